package serving

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	clocktesting "k8s.io/utils/clock/testing"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// fakeProbes answers from its fields and counts the probes of a round.
type fakeProbes struct {
	mu        sync.Mutex
	proxyDown map[int32]bool
	linkDown  map[string]bool
	silent    map[netip.Addr]bool // blocks until the round's deadline
	calls     map[string]int
}

func (f *fakeProbes) count(what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[what]++
}

func (f *fakeProbes) Proxy(_ context.Context, port int32) error {
	f.count("proxy")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.proxyDown[port] {
		return errRefused
	}
	return nil
}

func (f *fakeProbes) Link(name string, _ netip.Addr) error {
	f.count("link")
	if f.linkDown[name] {
		return errDown
	}
	return nil
}

func (f *fakeProbes) Ping(ctx context.Context, a netip.Addr) error {
	f.count("ping")
	if f.silent[a] {
		<-ctx.Done()
		return errTimeout
	}
	return nil
}

func TestCheckerRound(t *testing.T) {
	gw1, gw2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	probes := &fakeProbes{proxyDown: map[int32]bool{}, linkDown: map[string]bool{}, silent: map[netip.Addr]bool{}}
	c := &Checker{Probes: probes, Rise: 1, Fall: 1, Timeout: 20 * time.Millisecond}
	web := Target{Name: "ns/web", Ports: []int32{80, 443}, Link: "eth0"}
	api := Target{Name: "ns/api", Ports: []int32{80}, Link: "eth0", PingTargets: []netip.Addr{gw1, gw2}}

	round := func(targets ...Target) (map[string]webfarmv1.ServingStatus, bool) {
		probes.calls = map[string]int{}
		st, changed := c.Round(context.Background(), targets, t0)
		byName := map[string]webfarmv1.ServingStatus{}
		for _, s := range st {
			byName[s.Name] = s
		}
		return byName, changed
	}

	st, changed := round(web, api)
	if !changed || !st["ns/web"].Serving || !st["ns/api"].Serving {
		t.Fatalf("first round: %+v changed %v, want both serving, reported", st, changed)
	}
	if probes.calls["proxy"] != 2 || probes.calls["link"] != 1 || probes.calls["ping"] != 2 {
		t.Errorf("shared probes run more than once a round: %v", probes.calls)
	}
	if _, changed := round(web, api); changed {
		t.Errorf("an unchanged round reports a change")
	}

	probes.silent[gw1] = true
	if st, changed = round(web, api); changed || !st["ns/api"].Serving {
		t.Errorf("one ping target of two silent: %+v changed %v, want still serving", st["ns/api"], changed)
	}
	probes.silent[gw2] = true
	st, changed = round(web, api)
	if !changed || st["ns/api"].Serving || st["ns/api"].Reason != webfarmv1.ServingReasonPingTargetsUnreachable || !st["ns/web"].Serving {
		t.Errorf("both ping targets silent: %+v changed %v, want only ns/api not serving", st, changed)
	}

	probes.proxyDown[443] = true
	st, _ = round(web, api)
	if st["ns/web"].Serving || st["ns/web"].Reason != webfarmv1.ServingReasonProxyNotAnswering {
		t.Errorf("port 443 down: ns/web %+v, want not serving", st["ns/web"])
	}

	st, changed = round(web)
	if _, ok := st["ns/api"]; ok || !changed {
		t.Errorf("a FailoverIP no longer a target is still reported: %+v changed %v", st, changed)
	}
}

// TestCheckerRun: a round every interval of the clock, a report only when
// the verdicts change.
func TestCheckerRun(t *testing.T) {
	probes := &fakeProbes{proxyDown: map[int32]bool{}, linkDown: map[string]bool{}, silent: map[netip.Addr]bool{}, calls: map[string]int{}}
	c := &Checker{Probes: probes, Rise: 1, Fall: 1, Timeout: time.Second}
	clk := clocktesting.NewFakeClock(t0)
	reports := make(chan []webfarmv1.ServingStatus, 10)
	// Each round starts by asking for the targets: round n+1 starting means
	// round n is over, its report included.
	var started atomic.Int32
	// The frontend fails from round 2 on, whatever the pace of the ticks.
	targets := func() []Target {
		if started.Add(1) == 2 {
			probes.mu.Lock()
			probes.proxyDown[80] = true
			probes.mu.Unlock()
		}
		return []Target{{Name: "ns/web", Ports: []int32{80}}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.Run(ctx, clk, time.Second, targets, func(st []webfarmv1.ServingStatus) { reports <- st })
		close(done)
	}()
	defer func() { cancel(); <-done }()

	round := func(n int32) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			if started.Load() >= n {
				return true, nil
			}
			clk.Step(time.Second)
			return false, nil
		}); err != nil {
			t.Fatalf("round %d never started", n)
		}
	}
	round(1)
	if st := <-reports; len(st) != 1 || !st[0].Serving {
		t.Fatalf("first round reported %+v, want ns/web serving", st)
	}
	round(2)
	if st := <-reports; st[0].Serving {
		t.Fatalf("after the frontend failed: %+v, want not serving", st)
	}
	round(5) // rounds 3 and 4 are over
	select {
	case st := <-reports:
		t.Fatalf("unchanged rounds reported %+v", st)
	default:
	}
}
