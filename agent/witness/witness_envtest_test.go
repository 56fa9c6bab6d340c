package witness

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/testenv"
)

// TestEnvtestWitness writes witnesses against a real API server, with a
// fake clock setting their pace: each lands while the status names the
// node owner at the target's epoch, and none once the controller moved
// the address.
func TestEnvtestWitness(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	fip := ownedFailoverIP(t, env.Client, "front1", 3)
	key := client.ObjectKeyFromObject(fip)
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	results := make(chan error, 8)
	proved := make(chan struct{}, 8)
	var mu sync.Mutex
	var written []string
	w := &Witness{Client: reportingClient{Client: env.Client, results: results}, Node: "front1", Clock: clk,
		Proved: func() { proved <- struct{}{} },
		Written: func(result string, _ time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			written = append(written, result)
		}}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	target := Target{Name: key, UID: fip.UID, Epoch: 3, Every: time.Hour}
	w.Set(map[string]Target{"shop/vip": target})
	first := clk.Now()
	mustLand(t, results, proved)
	if got := w.Since("shop/vip", fip.UID, 3); !got.Equal(first) {
		t.Errorf("Since = %v after the first witness, want its start %v", got, first)
	}
	wantWitness(t, env.Client, key, webfarmv1.OwnerWitness{Node: "front1", Epoch: 3, Renewal: webfarmv1.LeaseRenewalVersion(first)})

	clk.Step(time.Hour)
	second := clk.Now()
	mustLand(t, results, proved)
	if got := w.Since("shop/vip", fip.UID, 3); !got.Equal(second) {
		t.Errorf("Since = %v after the second witness, want its start %v", got, second)
	}

	// The controller moves the address: the next witness fails its test,
	// and proves nothing.
	if err := env.Client.Get(ctx, key, fip); err != nil {
		t.Fatal(err)
	}
	fip.Status.Owner, fip.Status.Epoch, fip.Status.OwnerWitness = "front2", 4, nil
	if err := env.Client.Status().Update(ctx, fip); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Hour)
	mustFail(t, results)
	if got := w.Since("shop/vip", fip.UID, 3); !got.Equal(second) {
		t.Errorf("Since = %v after a refused witness, want the last one that landed (%v)", got, second)
	}
	// Nor does one at the new epoch, which names another owner.
	w.Set(map[string]Target{"shop/vip": {Name: key, UID: fip.UID, Epoch: 4, Every: time.Hour}})
	mustFail(t, results)
	if got := w.Since("shop/vip", fip.UID, 4); !got.IsZero() {
		t.Errorf("Since at epoch 4, owned by front2 = %v, want zero", got)
	}
	// A status from a controller that does not count witnesses (before
	// them, or rolled back to one): none lands, even the owner's.
	if err := env.Client.Get(ctx, key, fip); err != nil {
		t.Fatal(err)
	}
	fip.Status.Owner, fip.Status.OwnerWitnessCounted = "front1", false
	if err := env.Client.Status().Update(ctx, fip); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Hour)
	mustFail(t, results)
	if got := w.Since("shop/vip", fip.UID, 4); !got.IsZero() {
		t.Errorf("Since at epoch 4 under a controller that does not count witnesses = %v, want zero", got)
	}
	var stored webfarmv1.FailoverIP
	if err := env.Client.Get(ctx, key, &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Status.OwnerWitness != nil {
		t.Errorf("status after refused witnesses: witness %+v; want none", stored.Status.OwnerWitness)
	}
	// Written is told after the request returns: wait for the last one.
	want := []string{Landed, Landed, Refused, Refused, Refused}
	var got []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		mu.Lock()
		got = slices.Clone(written)
		mu.Unlock()
		if len(got) >= len(want) {
			break
		}
		runtime.Gosched()
	}
	if !slices.Equal(got, want) {
		t.Errorf("results written %v, want %v", got, want)
	}
}

func ownedFailoverIP(t *testing.T, c client.Client, owner string, epoch int64) *webfarmv1.FailoverIP {
	t.Helper()
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	fip := &webfarmv1.FailoverIP{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "vip"},
		Spec: webfarmv1.FailoverIPSpec{
			Address:   "192.0.2.10",
			Keepalive: metav1.Duration{Duration: 500 * time.Millisecond},
			Deadtime:  metav1.Duration{Duration: 2 * time.Second},
			Guard:     metav1.Duration{Duration: 500 * time.Millisecond},
		},
	}
	if err := c.Create(ctx, fip); err != nil {
		t.Fatal(err)
	}
	fip.Status = webfarmv1.FailoverIPStatus{Owner: owner, Epoch: epoch, OwnerWitnessCounted: true}
	if err := c.Status().Update(ctx, fip); err != nil {
		t.Fatal(err)
	}
	return fip
}

func mustLand(t *testing.T, results <-chan error, proved <-chan struct{}) {
	t.Helper()
	if err := next(t, results); err != nil {
		t.Fatalf("witness refused: %v", err)
	}
	select {
	case <-proved:
	case <-time.After(10 * time.Second):
		t.Fatal("Proved not called after a witness landed")
	}
}

func mustFail(t *testing.T, results <-chan error) {
	t.Helper()
	if err := next(t, results); err == nil {
		t.Fatal("a witness landed in a status that names another owner or epoch")
	}
}

func next(t *testing.T, results <-chan error) error {
	t.Helper()
	select {
	case err := <-results:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no witness written")
		return nil
	}
}

func wantWitness(t *testing.T, c client.Client, key client.ObjectKey, want webfarmv1.OwnerWitness) {
	t.Helper()
	var fip webfarmv1.FailoverIP
	if err := c.Get(context.Background(), key, &fip); err != nil {
		t.Fatal(err)
	}
	if got := fip.Status.OwnerWitness; got == nil || *got != want {
		t.Errorf("status.ownerWitness = %+v, want %+v", got, want)
	}
}

// reportingClient sends the outcome of every status patch to results.
type reportingClient struct {
	client.Client
	results chan<- error
}

func (c reportingClient) Status() client.SubResourceWriter {
	return reportingStatus{SubResourceWriter: c.Client.Status(), results: c.results}
}

type reportingStatus struct {
	client.SubResourceWriter
	results chan<- error
}

func (s reportingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	err := s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
	s.results <- err
	return err
}
