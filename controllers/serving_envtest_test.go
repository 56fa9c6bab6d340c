package controllers

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// TestEnvtestServing: the address follows a serving front, on a real
// kube-apiserver. Agents are played by status patches, as in
// TestEnvtestController.
func TestEnvtestServing(t *testing.T) {
	h := startHarness(t)
	ns := "serving"
	h.createNamespace(ns)
	for i, node := range []string{"sv-a", "sv-b", "sv-c"} {
		h.createNode(node, fmt.Sprintf("10.9.0.%d", i+1), map[string]string{"role": "sv"})
		h.renew(node)
	}
	h.createFarm(ns, "site", map[string]string{"role": "sv"}, "vip")
	for _, node := range []string{"sv-a", "sv-b", "sv-c"} {
		h.phase(node, webfarmv1.FrontActive)
	}
	fip := &webfarmv1.FailoverIP{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vip"},
		Spec: webfarmv1.FailoverIPSpec{
			Address: "192.0.2.90", PreferredNode: "sv-a", AutoFailback: true,
			Keepalive:   metav1.Duration{Duration: 500 * time.Millisecond},
			Deadtime:    metav1.Duration{Duration: testDeadtime},
			Guard:       metav1.Duration{Duration: testGuard},
			PingTargets: []string{"192.0.2.1", "2001:db8::1"},
		},
	}
	if err := h.c.Create(h.ctx, fip); err != nil {
		t.Fatalf("creating a FailoverIP with ping targets: %v", err)
	}
	h.failoverIP(ns, "vip", "owned by sv-a", ownerIs("sv-a", 1))

	h.reportServing("sv-c", ns+"/vip", false)
	h.failoverIP(ns, "vip", "sv-c not serving is no candidate", candidatesAre("sv-a", "sv-b"))

	h.reportServing("sv-a", ns+"/vip", false)
	st := h.failoverIP(ns, "vip", "sv-a stopped serving: asked to release", func(st *webfarmv1.FailoverIPStatus) error {
		if !st.ReleaseRequested {
			return fmt.Errorf("releaseRequested false")
		}
		return ownerIs("sv-a", 1)(st)
	}).Status
	if ready := meta.FindStatusCondition(st.Conditions, webfarmv1.ConditionReady); ready == nil || !strings.Contains(ready.Message, "hand-off to sv-b") {
		t.Errorf("Ready condition %+v does not name the successor sv-b", ready)
	}
	h.ackRelease("sv-a", ns+"/vip", 1)
	moved := h.failoverIP(ns, "vip", "handed to sv-b at once", ownerIs("sv-b", 2))
	if !moved.Status.PreviousOwnerReleased {
		t.Errorf("a serving hand-off without previousOwnerReleased: %+v", moved.Status)
	}

	// sv-a and sv-c, candidates again, were voters of epoch 2 already
	// (fronts that do not serve still vote), so sv-b keeps the address at
	// that epoch: no renewal.
	h.reportServing("sv-b", ns+"/vip", false)
	h.failoverIP(ns, "vip", "nobody serves: sv-b keeps the address, all fronts candidates", func(st *webfarmv1.FailoverIPStatus) error {
		if st.ReleaseRequested {
			return fmt.Errorf("release requested with nobody serving")
		}
		return allOf(candidatesAre("sv-a", "sv-b", "sv-c"), votersAre("sv-a", "sv-b", "sv-c"), ownerIs("sv-b", 2))(st)
	})

	h.reportServing("sv-a", ns+"/vip", true)
	h.failoverIP(ns, "vip", "sv-a serves again: sv-b asked to release to it", func(st *webfarmv1.FailoverIPStatus) error {
		if !st.ReleaseRequested {
			return fmt.Errorf("releaseRequested false")
		}
		if err := candidatesAre("sv-a")(st); err != nil {
			return err
		}
		return ownerIs("sv-b", 2)(st)
	})
}

// reportServing reports, as node's agent, whether it serves FailoverIP name
// (the agent's other keys are left out: none of this test's fronts holds).
func (h *harness) reportServing(node, name string, serving bool) {
	h.t.Helper()
	s := webfarmv1.ServingStatus{Name: name, Serving: serving, Reason: webfarmv1.ServingReasonServing}
	if !serving {
		s.Reason, s.Message = webfarmv1.ServingReasonProxyNotAnswering, "frontend port 80: connection refused"
	}
	h.patchFrontStatus(node, map[string]any{"serving": []webfarmv1.ServingStatus{s}, "failoverIPs": nil})
}

func candidatesAre(want ...string) func(*webfarmv1.FailoverIPStatus) error {
	return func(st *webfarmv1.FailoverIPStatus) error {
		if !slices.Equal(st.Candidates, want) {
			return fmt.Errorf("candidates %v, want %v", st.Candidates, want)
		}
		return nil
	}
}
