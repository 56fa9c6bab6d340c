package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"k8s.io/utils/ptr"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// TestEnvtestMetrics reads the controller's metrics from controller-runtime's
// registry, as its metrics endpoint serves them, through a hard loss: the
// owner, the epoch and the owner changes follow the status; sessions and
// phases follow the FrontNodes; two fronts reporting Holding show as two
// holders once both are alive.
func TestEnvtestMetrics(t *testing.T) {
	h := startHarness(t)
	ns := "metrics"
	h.activePair(ns, "mt", [2]string{"mt-a", "mt-b"}, [2]string{"10.9.0.1", "10.9.0.2"}, "vip")
	changes := func() float64 { return metricValue(t, "webfarm_failoverip_owner_changes_total", ns, "vip", "") }
	before := changes()
	h.createFailoverIP(ns, "vip", "192.0.2.90", "mt-a", false)
	h.failoverIP(ns, "vip", "owned by mt-a", ownerIs("mt-a", 1))
	expectMetrics(t, "mt-a named owner at epoch 1", map[string]float64{
		series("webfarm_failoverip_owner", ns, "vip", "mt-a"): 1,
		series("webfarm_failoverip_has_owner", ns, "vip", ""): 1,
		series("webfarm_failoverip_epoch", ns, "vip", ""):     1,
		series("webfarm_failoverip_holders", ns, "vip", ""):   0,
		"webfarm_failoverip_owner_changes_total/metrics/vip/": before + 1,
	})

	// mt-a falls silent and its voter mt-b reports it unheard: mt-b owns
	// the address at epoch 2 once mt-a's Lease has been silent for
	// deadtime plus guard, and mt-a is Down past the presence window.
	h.clock.Step(time.Second)
	h.renew("mt-b")
	h.clock.Step(testDeadtime - time.Second + 100*time.Millisecond)
	h.reportUnheard("mt-b", ns, "vip", 1, testDeadtime)
	// As its agent does, mt-b reports the peer it no longer hears, which
	// keeps mt-a, present for a while on its old Lease, from candidacy.
	h.patchFrontStatus("mt-b", map[string]any{"unheardFronts": []string{"mt-a"}})
	h.renew("mt-b")
	h.clock.Step(testGuard)
	h.failoverIP(ns, "vip", "owned by mt-b after a hard loss", ownerIs("mt-b", 2))
	// mt-b, the only voter of its epoch, renews its Lease every keepalive
	// while no peer vouches for it, as its agent does.
	h.hold("mt-b", ns, "vip", 2)
	for left := testPresence - testDeadtime - testGuard; left > 0; left -= testGuard {
		h.renew("mt-b")
		h.clock.Step(min(left, testGuard))
	}
	h.phase("mt-a", webfarmv1.FrontDown)
	expectMetrics(t, "mt-b named owner at epoch 2", map[string]float64{
		series("webfarm_failoverip_owner", ns, "vip", "mt-b"): 1,
		series("webfarm_failoverip_owner", ns, "vip", "mt-a"): -1,
		series("webfarm_failoverip_epoch", ns, "vip", ""):     2,
		"webfarm_failoverip_owner_changes_total/metrics/vip/": before + 2,
		"webfarm_frontnodes/phase=Down":                       atLeast(1),
		"webfarm_front_phase/front=mt-a,phase=Down":           1,
		"webfarm_front_phase/front=mt-a,phase=Active":         -1,
	})

	// The owner's HAProxy counts three sessions on mt-b, which drains;
	// both agents report holding the address. mt-a's report counts once
	// it is alive.
	h.annotateDrain("mt-b", "true")
	h.patchFrontStatus("mt-b", map[string]any{
		"servers": []webfarmv1.ServerStatus{
			{Farm: ns + "/site", Front: "mt-b", Role: webfarmv1.ServerMain, State: "DRAIN", Sessions: ptr.To[int32](2)},
			{Farm: ns + "/site", Front: "mt-b", Role: webfarmv1.ServerBackup, State: "UP", Sessions: ptr.To[int32](1)},
		},
		"failoverIPs": []webfarmv1.NodeFailoverIPStatus{{Name: ns + "/vip", Epoch: 2, State: webfarmv1.VIPHolding}},
	})
	h.patchFrontStatus("mt-a", map[string]any{
		"failoverIPs": []webfarmv1.NodeFailoverIPStatus{{Name: ns + "/vip", Epoch: 1, State: webfarmv1.VIPHolding}},
	})
	expectMetrics(t, "a Down front's report is no holder", map[string]float64{
		series("webfarm_failoverip_holders", ns, "vip", ""): 1,
	})
	h.renew("mt-a")
	h.phase("mt-a", webfarmv1.FrontActive)
	h.front("mt-b", "3 sessions", func(f *webfarmv1.FrontNode) error {
		if f.Status.Sessions == nil || *f.Status.Sessions != 3 {
			return fmt.Errorf("sessions %v", f.Status.Sessions)
		}
		return nil
	})
	expectMetrics(t, "sessions and two holders", map[string]float64{
		"webfarm_front_sessions/front=mt-b":                 3,
		series("webfarm_failoverip_holders", ns, "vip", ""): 2,
		"webfarm_front_phase/front=mt-a,phase=Active":       1,
		"webfarm_front_phase/front=mt-a,phase=Down":         -1,
	})
}

// atLeast marks an expected value as a lower bound: other tests' fronts
// share the control plane.
func atLeast(v float64) float64 { return -1000 - v }

// series names a FailoverIP series for expectMetrics: name/namespace/failoverip/node.
func series(name, ns, fip, node string) string {
	return fmt.Sprintf("%s/%s/%s/%s", name, ns, fip, node)
}

// expectMetrics polls the registry until every series has its value: -1
// for a series that must not exist, atLeast(v) for a lower bound. Keys are
// series(...) or name/label=value.
func expectMetrics(t *testing.T, what string, want map[string]float64) {
	t.Helper()
	eventually(t, what, func() error {
		for key, v := range want {
			got, ok := lookup(t, key)
			switch {
			case v == -1 && ok:
				return fmt.Errorf("%s = %v, want no series", key, got)
			case v == -1:
			case v <= -1000 && (!ok || got < -1000-v):
				return fmt.Errorf("%s = %v (present %v), want at least %v", key, got, ok, -1000-v)
			case v <= -1000:
			case !ok || got != v:
				return fmt.Errorf("%s = %v (present %v), want %v", key, got, ok, v)
			}
		}
		return nil
	})
}

// metricValue is the value of a FailoverIP series, 0 when absent.
func metricValue(t *testing.T, name, ns, fip, node string) float64 {
	v, _ := lookup(t, series(name, ns, fip, node))
	return v
}

// lookup finds a series in the gathered registry. A key with '=' is
// name/label=value[,label=value]; otherwise name/namespace/failoverip/node (node empty
// for series without it).
func lookup(t *testing.T, key string) (float64, bool) {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	want := parseKey(key)
	for _, mf := range families {
		if mf.GetName() != want["__name__"] {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsMatch(m, want) {
				return value(m), true
			}
		}
	}
	return 0, false
}

func parseKey(key string) map[string]string {
	parts := strings.Split(key, "/")
	want := map[string]string{"__name__": parts[0]}
	if len(parts) == 2 {
		for _, pair := range strings.Split(parts[1], ",") {
			label, v, _ := strings.Cut(pair, "=")
			want[label] = v
		}
		return want
	}
	want["namespace"], want["failoverip"] = parts[1], parts[2]
	if len(parts) > 3 && parts[3] != "" {
		want["node"] = parts[3]
	}
	return want
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)-1
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	return 0
}
