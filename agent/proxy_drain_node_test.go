package agent

import (
	"context"
	"net/netip"
	"reflect"
	"testing"

	"github.com/webfarm/webfarm/agent/haproxy"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/netnstest"
)

// TestNodeUndrainAfterForgetting: a real HAProxy, in a namespace of its
// own, keeps a server's runtime drain state across the agent's full syncs
// and across reloads (the server-state file). A front undrained in the very
// pass where the agent forgot what it had set — a full sync, or a reload —
// must still leave the drain state: before the fix the agent took its empty
// memory for "ready" and left the front drained for good.
func TestNodeUndrainAfterForgetting(t *testing.T) {
	ns := netnstest.New(t)
	tools, err := ns.Tools(t.TempDir(), "haproxy")
	if err != nil {
		t.Skipf("haproxy: %v", err)
	}
	ctx := context.Background()
	a := &Agent{proxy: &haproxy.Process{Binary: tools["haproxy"], Dir: t.TempDir()}}
	t.Cleanup(func() { _ = a.proxy.Stop(context.Background()) })
	two := drainFarm("front1", "front2")
	applyFarms(t, a, two)

	// An ordinary pass drains front1; a full sync that sees it undrained
	// takes it out of the drain state.
	a.syncDrainStates(ctx, drainSnapshot(map[string]bool{"front1": true, "front2": false}), two, false)
	wantDrained(t, a, "after draining front1", map[string]bool{"front1": true, "front2": false})
	a.syncDrainStates(ctx, drainSnapshot(map[string]bool{"front1": false, "front2": false}), two, true)
	wantDrained(t, a, "after a full sync that undrained front1", map[string]bool{"front1": false, "front2": false})

	// Drained again; then a reload (a third front joins) in the pass that
	// sees it undrained: HAProxy carries DRAIN over the reload.
	a.syncDrainStates(ctx, drainSnapshot(map[string]bool{"front1": true, "front2": false}), two, false)
	three := drainFarm("front1", "front2", "front3")
	if !applyFarms(t, a, three) {
		t.Fatal("adding a front did not reload HAProxy")
	}
	a.syncDrainStates(ctx, drainSnapshot(map[string]bool{"front1": false, "front2": false, "front3": false}), three, true)
	wantDrained(t, a, "after a reload that undrained front1", map[string]bool{"front1": false, "front2": false, "front3": false})
}

// drainFarm is one farm whose fronts, named so, live on loopback addresses
// of the test's namespace (their checks fail: the drain state is not theirs).
func drainFarm(fronts ...string) []haproxy.Farm {
	farm := haproxy.Farm{Key: "default/web", Spec: webfarmv1.WebFarmSpec{Frontend: webfarmv1.FrontendSpec{Port: 8080}}}
	for i, name := range fronts {
		addr := netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)})
		farm.Fronts = append(farm.Fronts, haproxy.Front{Name: name, Address: addr, Cookie: name})
	}
	return []haproxy.Farm{farm}
}

// applyFarms has the agent's HAProxy run farms, and reports whether it
// reloaded.
func applyFarms(t *testing.T, a *Agent, farms []haproxy.Farm) bool {
	t.Helper()
	cfg := haproxy.Config{Farms: farms, RuntimeSocket: a.proxy.RuntimeSocket()}
	text, err := haproxy.Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reloaded, err := a.proxy.Apply(context.Background(), text, haproxy.ErrorFiles(cfg))
	if err != nil {
		t.Fatal(err)
	}
	return reloaded
}

// drainSnapshot is a snapshot whose fronts ask to drain or not.
func drainSnapshot(draining map[string]bool) *snapshot {
	snap := &snapshot{fronts: map[string]*webfarmv1.FrontNode{}}
	for name, d := range draining {
		snap.fronts[name] = &webfarmv1.FrontNode{Spec: webfarmv1.FrontNodeSpec{DrainRequested: d}}
	}
	return snap
}

// wantDrained checks HAProxy's own runtime drain state of each front's main
// server.
func wantDrained(t *testing.T, a *Agent, when string, want map[string]bool) {
	t.Helper()
	states, err := a.proxy.DrainStates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for name := range want {
		main, _ := haproxy.ServerNames(name)
		got[name] = states[haproxy.BackendName("default/web")][main]
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: HAProxy drains %v, want %v", when, got, want)
	}
}
