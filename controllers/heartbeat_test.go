package controllers

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func TestHeartbeatTracker(t *testing.T) {
	clk := testingclock.NewFakeClock(t0)
	tr := NewHeartbeatTracker(clk)
	if at, heard := tr.LastAlive("a"); heard || !at.Equal(t0) {
		t.Errorf("never seen: LastAlive = %v, %v; want the tracker's start, not heard", at, heard)
	}
	if !tr.Revived("a", time.Second) {
		t.Errorf("never seen: Revived = false, want true")
	}
	steps := []struct {
		name      string
		after     time.Duration
		version   string
		news      bool
		heard     bool
		revived   bool
		lastAlive time.Duration // since t0
	}{
		{"first sighting", 0, "1", true, true, true, 0},
		{"renewal within deadtime", 500 * time.Millisecond, "2", true, true, false, 500 * time.Millisecond},
		{"resync of the same version", 300 * time.Millisecond, "2", false, true, false, 500 * time.Millisecond},
		{"renewal after a silence of deadtime", time.Second, "3", true, true, true, 1800 * time.Millisecond},
		{"deletion is no renewal", 100 * time.Millisecond, "", true, false, true, 1800 * time.Millisecond},
		{"recreated", 100 * time.Millisecond, "4", true, true, true, 2 * time.Second},
	}
	for _, s := range steps {
		clk.Step(s.after)
		if news := tr.Observe("a", s.version); news != s.news {
			t.Errorf("%s: Observe = %v, want %v", s.name, news, s.news)
		}
		at, heard := tr.LastAlive("a")
		if heard != s.heard || !at.Equal(t0.Add(s.lastAlive)) {
			t.Errorf("%s: LastAlive = %v, %v; want t0+%v, %v", s.name, at.Sub(t0), heard, s.lastAlive, s.heard)
		}
		if got := tr.Revived("a", time.Second); got != s.revived {
			t.Errorf("%s: Revived = %v, want %v", s.name, got, s.revived)
		}
	}
}

func TestWakeups(t *testing.T) {
	clk := testingclock.NewFakeClock(t0)
	w := newWakeups(clk)
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	if err := w.Start(t.Context(), q); err != nil {
		t.Fatal(err)
	}
	a := reconcile.Request{NamespacedName: types.NamespacedName{Name: "a"}}
	b := reconcile.Request{NamespacedName: types.NamespacedName{Name: "b"}}
	w.after(a, 2*time.Second)
	w.after(a, time.Second) // the earlier wins
	w.after(a, 3*time.Second)
	w.after(b, time.Second)
	w.forget(b)
	clk.Step(999 * time.Millisecond)
	if q.Len() != 0 {
		t.Fatalf("queue holds %d requests before any wake-up is due", q.Len())
	}
	clk.Step(time.Millisecond)
	if q.Len() != 1 {
		t.Fatalf("queue holds %d requests at a's wake-up, want 1 (b was forgotten)", q.Len())
	}
	if got, _ := q.Get(); got != a {
		t.Errorf("woke up %v, want %v", got, a)
	}
	q.Done(a)
	clk.Step(5 * time.Second)
	if q.Len() != 0 {
		t.Errorf("the later wake-ups of a, superseded, still fired: %d queued", q.Len())
	}
	w.after(b, 0)
	if q.Len() != 1 {
		t.Errorf("a wake-up due now is not queued at once")
	}
}

// TestHeartbeatTrackerBlindness: a silence of every Lease is the controller's
// blindness (an API outage, a watch catching up), not the death of every
// node: the owner must not be fenced for it.
func TestHeartbeatTrackerBlindness(t *testing.T) {
	clk := testingclock.NewFakeClock(t0)
	tr := NewHeartbeatTracker(clk)
	tr.NoteDeadtime(2 * time.Second)
	tr.Observe("owner", "1")
	tr.Observe("other", "1")

	// One node goes silent while the other renews: it ages normally.
	for v := 2; v <= 6; v++ {
		clk.Step(500 * time.Millisecond)
		tr.Observe("other", string(rune('0'+v)))
	}
	if at, _ := tr.LastAlive("owner"); !at.Equal(t0) {
		t.Fatalf("silent owner among live nodes: LastAlive = +%v, want +0 (it ages)", at.Sub(t0))
	}

	// Then nothing changes for a minute: blindness, everyone counts as alive now.
	clk.Step(time.Minute)
	blindNow := clk.Now()
	if at, heard := tr.LastAlive("owner"); !heard || !at.Equal(blindNow) {
		t.Errorf("while blind: LastAlive = +%v, %v; want now, heard", at.Sub(t0), heard)
	}

	// Leases change again: every node is alive from then, and ages from there.
	clk.Step(100 * time.Millisecond)
	resumed := clk.Now()
	tr.Observe("other", "7")
	clk.Step(500 * time.Millisecond)
	tr.Observe("other", "8")
	if at, _ := tr.LastAlive("owner"); !at.Equal(resumed) {
		t.Errorf("after the blindness: owner LastAlive = +%v, want the resumption +%v", at.Sub(t0), resumed.Sub(t0))
	}
}

// TestLeaseRenewal (issue 9, finding 7): only a renewal by the node's own
// agent — holderIdentity naming the node, renewTime moving — is a sign of
// its life; an edit by anyone else is not.
func TestLeaseRenewal(t *testing.T) {
	at := func(d time.Duration) *metav1.MicroTime { m := metav1.NewMicroTime(t0.Add(d)); return &m }
	lease := func(holder *string, renew *metav1.MicroTime, labels map[string]string) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: holder, RenewTime: renew}}
	}
	renewed, _ := leaseRenewal(lease(ptr.To("front1"), at(0), nil), "front1")
	for _, tt := range []struct {
		name    string
		lease   *coordinationv1.Lease
		wantOK  bool
		wantNew bool // a renewal other than the first one
	}{
		{"the same renewal with a label added", lease(ptr.To("front1"), at(0), map[string]string{"x": "y"}), true, false},
		{"renewed by its agent", lease(ptr.To("front1"), at(time.Second), nil), true, true},
		{"another holder", lease(ptr.To("front2"), at(time.Second), nil), false, false},
		{"no holder", lease(nil, at(time.Second), nil), false, false},
		{"never renewed", lease(ptr.To("front1"), nil, nil), false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := leaseRenewal(tt.lease, "front1")
			if ok != tt.wantOK || (ok && (got != renewed) != tt.wantNew) {
				t.Errorf("leaseRenewal = %q, %v; want ok %v, a new renewal %v (first: %q)", got, ok, tt.wantOK, tt.wantNew, renewed)
			}
		})
	}
}
