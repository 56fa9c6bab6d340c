package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	apiwatch "k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// scenarioDeleteHeld: deleting a held FailoverIP takes the address away at
// a new epoch, with no new owner; the object stays until its last owner
// reports the address gone at that epoch, for this very object.
func scenarioDeleteHeld(h *harness) {
	ns := "delheld"
	h.servedFarms("dh", map[string]string{"dh-a": "10.9.0.1", "dh-b": "10.9.0.2"}, ns)
	owners := h.recordOwners(ns)
	h.createFailoverIP(ns, "vip", "192.0.2.90", "dh-a", false)
	fip := h.failoverIP(ns, "vip", "owned by dh-a", ownerIs("dh-a", 1))
	if !controllerutil.ContainsFinalizer(fip, webfarmv1.FailoverIPFinalizer) {
		h.t.Fatalf("finalizers %v, want %s", fip.Finalizers, webfarmv1.FailoverIPFinalizer)
	}
	h.reportFailoverIP("dh-a", webfarmv1.NodeFailoverIPStatus{Name: ns + "/vip", UID: fip.UID, Epoch: 1, State: webfarmv1.VIPHolding})

	h.deleteFailoverIP(ns, "vip")
	h.failoverIP(ns, "vip", "taken away from dh-a at epoch 2", withdrawnFrom("dh-a", 2, webfarmv1.ReasonDeleting))
	h.event("FailoverIP", "vip", corev1.EventTypeNormal, EventOwnershipWithdrawn)

	// Neither a release at the old epoch nor one about another object of
	// the same name proves anything.
	for _, report := range []webfarmv1.NodeFailoverIPStatus{
		{Name: ns + "/vip", UID: fip.UID, Epoch: 1, State: webfarmv1.VIPReleased},
		{Name: ns + "/vip", UID: "another-object", Epoch: 2, State: webfarmv1.VIPReleased},
	} {
		h.reportFailoverIP("dh-a", report)
		h.stillThere(ns, "vip", fmt.Sprintf("dh-a reports %s at epoch %d for UID %s", report.State, report.Epoch, report.UID))
	}

	h.reportFailoverIP("dh-a", webfarmv1.NodeFailoverIPStatus{Name: ns + "/vip", UID: fip.UID, Epoch: 2, State: webfarmv1.VIPReleased})
	h.failoverIPGone(ns, "vip")
	h.event("FailoverIP", "vip", corev1.EventTypeNormal, EventAddressRemoved)
	owners.check(h.t)
}

// scenarioDeleteSilentOwner: the owner of a deleted FailoverIP is silent;
// the object goes once its Lease has been silent for the presence window —
// not at deadtime plus guard: a quiet Lease proves nothing sooner (failover
// v3), and a live owner would have reported the address released — and
// once its other voter reports that it has vouched for nobody since the
// withdrawal for a deadtime: until then the owner may be cut off from the
// API server with that voter and hold through it.
func scenarioDeleteSilentOwner(h *harness) {
	ns := "delsilent"
	h.servedFarms("ds", map[string]string{"ds-a": "10.11.0.1", "ds-b": "10.11.0.2"}, ns)
	owners := h.recordOwners(ns)
	h.createFailoverIP(ns, "vip", "192.0.2.91", "ds-a", false)
	h.failoverIP(ns, "vip", "owned by ds-a", ownerIs("ds-a", 1))

	// ds-a falls silent; ds-b keeps renewing.
	h.clock.Step(time.Second)
	h.renew("ds-b")
	h.deleteFailoverIP(ns, "vip")
	h.failoverIP(ns, "vip", "taken away from ds-a at epoch 2", withdrawnFrom("ds-a", 2, webfarmv1.ReasonDeleting))
	h.stillThere(ns, "vip", "ds-a silent for 1s only")

	h.clock.Step(testDeadtime + testGuard - time.Second)
	h.stillThere(ns, "vip", "ds-a silent for deadtime plus guard only")
	h.clock.Step(testPresence - testDeadtime - testGuard)
	h.stillThere(ns, "vip", "ds-b, the other voter, has not reported the withdrawal")

	fip := h.failoverIP(ns, "vip", "still withdrawn", withdrawnFrom("ds-a", 2, webfarmv1.ReasonDeleting))
	unheard := webfarmv1.NodeFailoverIPStatus{Name: ns + "/vip", UID: fip.UID, Epoch: 2, State: webfarmv1.VIPOwnerUnheard,
		UnheardAfter: &metav1.Duration{Duration: testDeadtime / 2}}
	h.reportFailoverIP("ds-b", unheard)
	h.stillThere(ns, "vip", "ds-b waited less than the deadtime")
	unheard.UnheardAfter.Duration = testDeadtime
	h.reportFailoverIP("ds-b", unheard)
	h.failoverIPGone(ns, "vip")
	owners.check(h.t)
}

// scenarioConflict: two FailoverIPs of one address, in two namespaces and
// spelled differently, are both in Conflict, naming each other, and neither
// is owned; the held one is taken away. Once one is deleted, the other is
// elected again — but only after its last owner said the address is gone.
func scenarioConflict(h *harness) {
	nsA, nsB := "conflict-a", "conflict-b"
	h.servedFarms("cf", map[string]string{"cf-a": "10.12.0.1", "cf-b": "10.12.0.2"}, nsA, nsB)
	h.createFailoverIP(nsA, "vip", "2001:db8::64", "cf-a", false)
	held := h.failoverIP(nsA, "vip", "owned by cf-a", ownerIs("cf-a", 1))

	h.createFailoverIP(nsB, "vip", "2001:DB8:0:0:0:0:0:64", "cf-b", false)
	h.failoverIP(nsA, "vip", "in conflict, taken away from cf-a", func(st *webfarmv1.FailoverIPStatus) error {
		if err := withdrawnFrom("cf-a", 2, webfarmv1.ReasonConflict)(st); err != nil {
			return err
		}
		return messageNames(st, nsB+"/vip")
	})
	h.failoverIP(nsB, "vip", "in conflict, never owned", func(st *webfarmv1.FailoverIPStatus) error {
		if err := ownerIs("", 0)(st); err != nil {
			return err
		}
		if err := readyIs(st, metav1.ConditionFalse, webfarmv1.ReasonConflict); err != nil {
			return err
		}
		return messageNames(st, nsA+"/vip")
	})
	h.event("FailoverIP", "vip", corev1.EventTypeWarning, EventConflict)

	h.deleteFailoverIP(nsB, "vip")
	h.failoverIPGone(nsB, "vip")
	h.failoverIP(nsA, "vip", "conflict over, cf-a not yet known to have removed the address", func(st *webfarmv1.FailoverIPStatus) error {
		return withdrawnFrom("cf-a", 2, webfarmv1.ReasonAwaitingRelease)(st)
	})
	h.reportFailoverIP("cf-a", webfarmv1.NodeFailoverIPStatus{Name: nsA + "/vip", UID: held.UID, Epoch: 2, State: webfarmv1.VIPReleased})
	fip := h.failoverIP(nsA, "vip", "elected again", ownerIs("cf-a", 3))
	if !fip.Status.PreviousOwnerReleased {
		h.t.Errorf("elected after a proven withdrawal, but not announced at once: %+v", fip.Status)
	}
}

// servedFarms creates, in each namespace, a WebFarm "site" listing
// FailoverIP "vip" and selecting the Nodes labelled role=role, which it
// creates with their addresses; it renews their Leases and waits until
// their fronts are Active.
func (h *harness) servedFarms(role string, nodes map[string]string, namespaces ...string) {
	h.t.Helper()
	for name, ip := range nodes {
		h.createNode(name, ip, map[string]string{"role": role})
		h.renew(name)
	}
	for _, ns := range namespaces {
		h.createNamespace(ns)
		h.createFarm(ns, "site", map[string]string{"role": role}, "vip")
	}
	for name := range nodes {
		h.phase(name, webfarmv1.FrontActive)
	}
}

// withdrawnFrom: nobody owns the address at epoch, taken from prev, for
// reason.
func withdrawnFrom(prev string, epoch int64, reason string) func(*webfarmv1.FailoverIPStatus) error {
	return func(st *webfarmv1.FailoverIPStatus) error {
		if err := ownerIs("", epoch)(st); err != nil {
			return err
		}
		if st.PreviousOwner != prev || st.PreviousOwnerReleased || len(st.Candidates) > 0 {
			return fmt.Errorf("previous owner %q (released %v), candidates %v; want %q unreleased, no candidate",
				st.PreviousOwner, st.PreviousOwnerReleased, st.Candidates, prev)
		}
		return readyIs(st, metav1.ConditionFalse, reason)
	}
}

func messageNames(st *webfarmv1.FailoverIPStatus, other string) error {
	if c := meta.FindStatusCondition(st.Conditions, webfarmv1.ConditionReady); c == nil || !strings.Contains(c.Message, other) {
		return fmt.Errorf("Ready condition %+v does not name %s", c, other)
	}
	return nil
}

// reportFailoverIP reports, as node's agent, what it does with one
// FailoverIP.
func (h *harness) reportFailoverIP(node string, s webfarmv1.NodeFailoverIPStatus) {
	h.t.Helper()
	h.patchFrontStatus(node, map[string]any{"failoverIPs": []webfarmv1.NodeFailoverIPStatus{s}})
}

func (h *harness) deleteFailoverIP(namespace, name string) {
	h.t.Helper()
	fip := &webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if err := h.c.Delete(h.ctx, fip); err != nil {
		h.t.Fatalf("deleting FailoverIP %s/%s: %v", namespace, name, err)
	}
}

func (h *harness) failoverIPGone(namespace, name string) {
	h.t.Helper()
	eventually(h.t, fmt.Sprintf("FailoverIP %s/%s gone", namespace, name), func() error {
		err := h.c.Get(h.ctx, types.NamespacedName{Namespace: namespace, Name: name}, &webfarmv1.FailoverIP{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			return errors.New("still exists")
		}
		return err
	})
}

// stillThere checks, for a while, that a deleted FailoverIP keeps its
// finalizer: it polls for a second, which a controller that wrongly let it
// go would need far less than to do so.
func (h *harness) stillThere(namespace, name, why string) {
	h.t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); <-tick.C {
		fip := &webfarmv1.FailoverIP{}
		if err := h.c.Get(h.ctx, types.NamespacedName{Namespace: namespace, Name: name}, fip); err != nil {
			h.t.Fatalf("FailoverIP %s/%s went (%s): %v", namespace, name, why, err)
		}
		if !controllerutil.ContainsFinalizer(fip, webfarmv1.FailoverIPFinalizer) {
			h.t.Fatalf("FailoverIP %s/%s lost its finalizer (%s)", namespace, name, why)
		}
	}
}

// ownerRecorder watches the FailoverIPs of a namespace and keeps every
// version of one being deleted.
type ownerRecorder struct {
	mu       sync.Mutex
	deleting []webfarmv1.FailoverIP
	// before is, per object, the ownership it had when its deletion began.
	before map[types.UID]Ownership
}

func (h *harness) recordOwners(namespace string) *ownerRecorder {
	h.t.Helper()
	wc, err := client.NewWithWatch(h.env.Config, client.Options{Scheme: h.env.Scheme})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := wc.Watch(ctx, &webfarmv1.FailoverIPList{}, client.InNamespace(namespace))
	if err != nil {
		cancel()
		h.t.Fatalf("watching the FailoverIPs of %s: %v", namespace, err)
	}
	r := &ownerRecorder{before: map[types.UID]Ownership{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		last := map[types.UID]Ownership{}
		for ev := range w.ResultChan() {
			fip, ok := ev.Object.(*webfarmv1.FailoverIP)
			if !ok || ev.Type == apiwatch.Error {
				continue
			}
			r.mu.Lock()
			if fip.DeletionTimestamp.IsZero() {
				last[fip.UID] = ownershipOf(fip.Status)
			} else {
				if _, ok := r.before[fip.UID]; !ok {
					r.before[fip.UID] = last[fip.UID]
				}
				r.deleting = append(r.deleting, *fip)
			}
			r.mu.Unlock()
		}
	}()
	h.t.Cleanup(func() { w.Stop(); cancel(); <-done })
	return r
}

// check fails t if a FailoverIP being deleted was ever given an owner other
// than the one it had when its deletion began.
func (r *ownerRecorder) check(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.deleting) == 0 {
		t.Error("saw no version of a FailoverIP being deleted")
	}
	for _, fip := range r.deleting {
		st, was := fip.Status, r.before[fip.UID]
		if st.Owner != "" && (st.Owner != was.Owner || st.Epoch != was.Epoch) {
			t.Errorf("FailoverIP %s/%s being deleted was given owner %s at epoch %d (it had %s at %d)",
				fip.Namespace, fip.Name, st.Owner, st.Epoch, was.Owner, was.Epoch)
		}
	}
	t.Logf("checked %d versions of FailoverIPs being deleted", len(r.deleting))
}
