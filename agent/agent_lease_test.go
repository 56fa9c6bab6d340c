package agent

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/webfarm/webfarm/agent/heartbeat"
	"github.com/webfarm/webfarm/agent/ownership"
)

// A restarted owner renews its Lease before it has its first view of the
// cluster, so that it proves itself alive again before the proof its
// previous process saved runs out; past that proof it waits for the view,
// and an agent that holds nothing renews only once it has one.
func TestRenewLeaseBeforeTheFirstViewOnlyWhileTheSavedProofLasts(t *testing.T) {
	for _, tc := range []struct {
		name string
		// proofLeft is what the saved proof has left at the start; 0: the
		// node holds nothing.
		proofLeft  time.Duration
		renewEarly bool
	}{
		{name: "restarted owner", proofLeft: time.Second, renewEarly: true},
		{name: "saved proof already over", proofLeft: -time.Second},
		{name: "holds nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC))
			a := leaseAgent(t, clk, tc.proofLeft)
			ctx, cancel := context.WithCancel(context.Background())
			synced := make(chan struct{})
			stopped := make(chan struct{})
			go func() { a.renewLease(ctx, synced); close(stopped) }()
			defer func() { cancel(); <-stopped }()

			if tc.renewEarly {
				poll(t, "renewed before the first view", func() bool { return !a.lease.LastRenewal().IsZero() })
				clk.Step(tc.proofLeft + time.Millisecond)
			}
			// A running renewer always waits on the clock but for an
			// instant; one that stopped waits on nothing, and renews no
			// more when the clock moves on.
			before := a.lease.LastRenewal()
			poll(t, "stopped at the end of the saved proof", settled(50*time.Millisecond, func() bool {
				last := a.lease.LastRenewal()
				defer func() { before = last }()
				return !clk.HasWaiters() && last.Equal(before)
			}))
			clk.Step(2 * time.Second)
			stays(t, "no renewal past the saved proof before the first view", 100*time.Millisecond,
				func() bool { return a.lease.LastRenewal().Equal(before) })

			close(synced)
			poll(t, "renewed once it has its view", func() bool { return !a.lease.LastRenewal().Equal(before) })
		})
	}
}

// leaseAgent is an agent with a fake clock and API server whose memory
// holds an address with proofLeft of its saved proof left (none when 0).
func leaseAgent(t *testing.T, clk *clocktesting.FakeClock, proofLeft time.Duration) *Agent {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	a := &Agent{clock: clk, failover: newFailover(&Agent{}, filepath.Join(t.TempDir(), "ownership.json"))}
	a.lease = &heartbeat.LeaseRenewer{Client: fake.NewClientBuilder().WithScheme(scheme).Build(), Namespace: "webfarm-system", Node: "front1", Clock: clk}
	if proofLeft != 0 {
		m := a.failover.memory
		must(t, m.set("default/a", ownership.Memory{Holding: true, HeldEpoch: 3}))
		must(t, m.proved("default/a", clk.Now().Add(proofLeft), 1500*time.Millisecond, proofSaveStep))
		m.waitSaves()
	}
	return a
}

// settled returns a condition that holds once cond held throughout the
// last d, in real time.
func settled(d time.Duration, cond func() bool) func() bool {
	var since time.Time
	return func() bool {
		if !cond() {
			since = time.Time{}
			return false
		}
		if since.IsZero() {
			since = time.Now()
		}
		return time.Since(since) >= d
	}
}

// stays checks, in real time, that cond holds throughout d.
func stays(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, d, true,
		func(context.Context) (bool, error) { return !cond(), nil })
	if err == nil {
		t.Fatalf("%s: it did not hold", what)
	}
}

// poll waits, in real time, until cond holds.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
