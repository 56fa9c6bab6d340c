package controllers

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// TestEnvtestController runs the controller in-process against a real
// kube-apiserver, on a fake clock, through the scenarios of issue 3. The
// scenarios share one control plane and one manager; each uses its own
// namespace and nodes.
func TestEnvtestController(t *testing.T) {
	h := startHarness(t)
	for _, sc := range []struct {
		name string
		run  func(*harness)
	}{
		{"FrontNodeLifecycle", scenarioFrontNodeLifecycle},
		{"DrainCycle", scenarioDrainCycle},
		{"InvalidDrainAnnotation", scenarioInvalidDrainAnnotation},
		{"NoCandidate", scenarioNoCandidate},
		{"HardLoss", scenarioHardLoss},
		{"WitnessKeepsOwner", scenarioWitnessKeepsOwner},
		{"PlannedHandOff", scenarioPlannedHandOff},
		{"ShutdownHandOff", scenarioShutdownHandOff},
		{"OwnerNodeDeleted", scenarioOwnerNodeDeleted},
		{"DeleteHeld", scenarioDeleteHeld},
		{"DeleteSilentOwner", scenarioDeleteSilentOwner},
		{"Conflict", scenarioConflict},
		{"UninstallHeld", scenarioUninstallHeld},
		{"UninstallSilentOwner", scenarioUninstallSilentOwner},
		{"UninstallFrontNodesDeleted", scenarioUninstallFrontNodesDeleted},
		{"OwnerUnselected", scenarioOwnerUnselected},
		// Last: a 10s deadtime makes the controller judge its blindness
		// over 10s from then on.
		{"ForeignLeaseEdit", scenarioForeignLeaseEdit},
		{"TimingEditWhileOwnerIsolated", scenarioTimingEditWhileOwnerIsolated},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.run(h.sub(t)) })
	}
}

func (h *harness) sub(t testing.TB) *harness {
	c := *h
	c.t, c.ctx = t, t.Context()
	return &c
}

var cookieRE = regexp.MustCompile(`^[a-z0-9]{4,32}$`)

func hasFarms(want ...string) func(*webfarmv1.FrontNode) error {
	return func(f *webfarmv1.FrontNode) error {
		if !slices.Equal(f.Spec.Farms, want) {
			return fmt.Errorf("farms %v, want %v", f.Spec.Farms, want)
		}
		return nil
	}
}

// scenarioFrontNodeLifecycle: a FrontNode per selected Node, shared by the
// farms selecting it, deleted when no farm selects it or its Node is gone.
func scenarioFrontNodeLifecycle(h *harness) {
	ns := "lifecycle"
	h.createNamespace(ns)
	h.createNode("lc-1", "10.1.0.1", map[string]string{"role": "lc"})
	h.createNode("lc-2", "10.1.0.2", map[string]string{"role": "lc"})
	h.createNode("lc-3", "10.1.0.3", nil)
	h.createFarm(ns, "shop", map[string]string{"role": "lc"})

	f1 := h.front("lc-1", "created for farm shop", hasFarms("lifecycle/shop"))
	if f1.Spec.NodeName != "lc-1" || f1.Spec.Address != "10.1.0.1" {
		h.t.Errorf("FrontNode lc-1 spec = %+v, want nodeName lc-1, address 10.1.0.1", f1.Spec)
	}
	if !cookieRE.MatchString(f1.Spec.Cookie) || strings.Contains(f1.Spec.Cookie, "lc") {
		h.t.Errorf("FrontNode lc-1 cookie %q: want random [a-z0-9]{4,32} revealing nothing of the host", f1.Spec.Cookie)
	}
	h.front("lc-2", "created for farm shop", hasFarms("lifecycle/shop"))

	h.patchNode("lc-3", "labels", map[string]any{"role": "lc"})
	h.front("lc-3", "created once labelled", hasFarms("lifecycle/shop"))

	h.createFarm(ns, "blog", map[string]string{"tier": "blog"})
	h.patchNode("lc-1", "labels", map[string]any{"tier": "blog"})
	shared := h.front("lc-1", "shared by both farms", hasFarms("lifecycle/blog", "lifecycle/shop"))
	if shared.Spec.Cookie != f1.Spec.Cookie {
		h.t.Errorf("FrontNode lc-1 cookie changed from %q to %q", f1.Spec.Cookie, shared.Spec.Cookie)
	}

	h.patchNode("lc-2", "labels", map[string]any{"role": nil})
	h.frontGone("lc-2")
	if err := h.c.Delete(h.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "lc-3"}}); err != nil {
		h.t.Fatalf("deleting Node lc-3: %v", err)
	}
	h.frontGone("lc-3")
	if err := h.c.Delete(h.ctx, &webfarmv1.WebFarm{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}}); err != nil {
		h.t.Fatalf("deleting WebFarm shop: %v", err)
	}
	h.front("lc-1", "left with farm blog", hasFarms("lifecycle/blog"))

	h.farmStatus(ns, "blog", "one front, silent", func(st *webfarmv1.WebFarmStatus) error {
		return farmReadyIs(st, 1, metav1.ConditionFalse, webfarmv1.ReasonNoFrontReady)
	})
}

// scenarioDrainCycle: annotation → drainRequested → Draining → Drained (the
// agent reports no session left) → undrained → Active, with events.
func scenarioDrainCycle(h *harness) {
	ns := "drain"
	h.createNamespace(ns)
	h.createNode("dr-1", "10.2.0.1", map[string]string{"role": "dr"})
	h.renew("dr-1")
	h.createFarm(ns, "site", map[string]string{"role": "dr"})
	h.phase("dr-1", webfarmv1.FrontActive)

	h.annotateDrain("dr-1", "true")
	h.front("dr-1", "drainRequested", func(f *webfarmv1.FrontNode) error {
		if !f.Spec.DrainRequested {
			return fmt.Errorf("drainRequested false")
		}
		return nil
	})
	h.phase("dr-1", webfarmv1.FrontDraining)
	h.event("FrontNode", "dr-1", corev1.EventTypeNormal, EventFrontDraining)

	servers := func(main, backup int32) map[string]any {
		return map[string]any{"servers": []webfarmv1.ServerStatus{
			{Farm: "drain/site", Front: "dr-1", Role: webfarmv1.ServerMain, State: "DRAIN", Sessions: &main},
			{Farm: "drain/site", Front: "dr-1", Role: webfarmv1.ServerBackup, State: "UP", Sessions: &backup},
		}}
	}
	h.patchFrontStatus("dr-1", servers(2, 1))
	h.front("dr-1", "3 sessions left, still Draining", func(f *webfarmv1.FrontNode) error {
		if f.Status.Sessions == nil || *f.Status.Sessions != 3 || f.Status.Phase != webfarmv1.FrontDraining {
			return fmt.Errorf("sessions %v, phase %s", f.Status.Sessions, f.Status.Phase)
		}
		return nil
	})
	h.patchFrontStatus("dr-1", servers(0, 0))
	h.phase("dr-1", webfarmv1.FrontDrained)
	h.event("FrontNode", "dr-1", corev1.EventTypeNormal, EventFrontDrained)

	h.annotateDrain("dr-1", nil)
	f := h.phase("dr-1", webfarmv1.FrontActive)
	if f.Spec.DrainRequested {
		h.t.Errorf("FrontNode dr-1 drainRequested still true once undrained")
	}
	h.event("FrontNode", "dr-1", corev1.EventTypeNormal, EventFrontActive)
	if len(f.Status.Servers) != 2 {
		h.t.Errorf("the controller's status patches dropped the agent's servers: %+v", f.Status.Servers)
	}
}

// scenarioInvalidDrainAnnotation: a value other than true/false is a
// Warning event on the Node and drains nothing.
func scenarioInvalidDrainAnnotation(h *harness) {
	ns := "invalid"
	h.createNamespace(ns)
	h.createNode("iv-1", "10.3.0.1", map[string]string{"role": "iv"})
	h.renew("iv-1")
	h.createFarm(ns, "site", map[string]string{"role": "iv"})
	h.phase("iv-1", webfarmv1.FrontActive)
	h.annotateDrain("iv-1", "yes")
	h.event("Node", "iv-1", corev1.EventTypeWarning, EventInvalidDrainAnnotation)
	f := h.phase("iv-1", webfarmv1.FrontActive)
	if f.Spec.DrainRequested {
		h.t.Errorf("FrontNode iv-1 drains on annotation %q", "yes")
	}
}

// scenarioNoCandidate: with no live front the address is held by nobody,
// with a condition and an event; the first front heard takes it at once.
func scenarioNoCandidate(h *harness) {
	ns := "nocand"
	h.createNamespace(ns)
	h.createNode("nc-1", "10.4.0.1", map[string]string{"role": "nc"})
	h.createFailoverIP(ns, "vip", "192.0.2.40", "", false)
	h.createFarm(ns, "site", map[string]string{"role": "nc"}, "vip")
	h.failoverIP(ns, "vip", "no candidate", func(st *webfarmv1.FailoverIPStatus) error {
		return readyIs(st, metav1.ConditionFalse, webfarmv1.ReasonNoCandidate)
	})
	h.event("FailoverIP", "vip", corev1.EventTypeWarning, EventNoCandidate)
	h.farmStatus(ns, "site", "address unowned", func(st *webfarmv1.WebFarmStatus) error {
		return farmReadyIs(st, 1, metav1.ConditionFalse, webfarmv1.ReasonFailoverIPUnowned)
	})

	h.renew("nc-1")
	fip := h.failoverIP(ns, "vip", "owned by nc-1", ownerIs("nc-1", 1))
	if !fip.Status.PreviousOwnerReleased || fip.Status.Transitions != 1 || fip.Status.LastTransitionTime == nil {
		h.t.Errorf("first owner: status %+v, want previousOwnerReleased, 1 transition and its time", fip.Status)
	}
	h.failoverIP(ns, "vip", "owned, not yet announced", func(st *webfarmv1.FailoverIPStatus) error {
		return readyIs(st, metav1.ConditionFalse, webfarmv1.ReasonOwnerNotAnnounced)
	})
	h.patchFrontStatus("nc-1", map[string]any{
		"proxy":       map[string]any{"healthy": true, "configHash": "abc"},
		"failoverIPs": []webfarmv1.NodeFailoverIPStatus{{Name: ns + "/vip", Epoch: 1, State: webfarmv1.VIPHolding}},
	})
	h.failoverIP(ns, "vip", "held by nc-1", func(st *webfarmv1.FailoverIPStatus) error {
		return readyIs(st, metav1.ConditionTrue, webfarmv1.ReasonOwned)
	})
	h.farmStatus(ns, "site", "served", func(st *webfarmv1.WebFarmStatus) error {
		if st.Owners != "nc-1" {
			return fmt.Errorf("owners %q", st.Owners)
		}
		return farmReadyIs(st, 1, metav1.ConditionTrue, webfarmv1.ReasonAllFrontsReady)
	})
}

// scenarioHardLoss (failover v3): the owner's Lease stops and its
// surviving voter reports it unheard after a deadtime. The address moves
// only once both hold — the report, and deadtime plus guard of Lease
// silence — to the next front at epoch+1, unreleased. The silent front is
// Down only past the presence window (agents renew their Lease only every
// webfarmv1.QuietLeaseInterval in steady state).
func scenarioHardLoss(h *harness) {
	ns := "loss"
	// Both fronts Active before the address exists, so that the first
	// election sees both and picks the preferred one.
	h.activePair(ns, "ls", [2]string{"ls-a", "ls-b"}, [2]string{"10.5.0.1", "10.5.0.2"}, "vip")
	h.createFailoverIP(ns, "vip", "192.0.2.50", "ls-a", false)
	h.failoverIP(ns, "vip", "owned by ls-a, both fronts voters", allOf(ownerIs("ls-a", 1), votersAre("ls-a", "ls-b")))

	// ls-a falls silent; ls-b keeps renewing and, a deadtime later,
	// reports ls-a unheard. ls-a's last status write, Holding, lands after
	// that report: once the controller shows it, it has seen the report
	// too (one watch delivers a kind's changes in order), and the Lease,
	// silent for less than deadtime plus guard, still keeps ls-a owner.
	h.clock.Step(time.Second)
	h.renew("ls-b")
	h.clock.Step(testDeadtime - time.Second + 100*time.Millisecond)
	h.reportUnheard("ls-b", ns, "vip", 1, testDeadtime)
	h.hold("ls-a", ns, "vip", 1)
	h.failoverIP(ns, "vip", "ls-a reported unheard, its Lease not yet silent for deadtime plus guard: still owner", func(st *webfarmv1.FailoverIPStatus) error {
		if err := ownerIs("ls-a", 1)(st); err != nil {
			return err
		}
		return readyIs(st, metav1.ConditionTrue, webfarmv1.ReasonOwned)
	})

	h.renew("ls-b")
	h.clock.Step(testGuard)
	fip := h.failoverIP(ns, "vip", "owned by ls-b past deadtime plus guard", ownerIs("ls-b", 2))
	if fip.Status.PreviousOwner != "ls-a" || fip.Status.PreviousOwnerReleased {
		h.t.Errorf("after a hard loss: status %+v, want previousOwner ls-a, not released", fip.Status)
	}
	h.event("FailoverIP", "vip", corev1.EventTypeNormal, EventOwnerChanged)
	// The lost owner is no voter of the epoch that replaces it.
	if !slices.Equal(fip.Status.Voters, []string{"ls-b"}) {
		h.t.Errorf("voters of epoch 2 after the hard loss of ls-a: %v, want [ls-b]", fip.Status.Voters)
	}

	// ls-a is Down once its Lease has been silent for the presence window.
	// ls-b, the only voter of its epoch, renews its Lease every keepalive
	// meanwhile, as its agent does while no peer vouches for it.
	h.hold("ls-b", ns, "vip", 2)
	for left := testPresence - testDeadtime - testGuard; left > 0; left -= testGuard {
		h.renew("ls-b")
		h.clock.Step(min(left, testGuard))
	}
	h.phase("ls-a", webfarmv1.FrontDown)
	h.event("FrontNode", "ls-a", corev1.EventTypeWarning, EventFrontDown)

	// ls-a comes back, its agent holding nothing at the new epoch: without
	// autoFailback, ls-b keeps the address, renewed at epoch 3 with ls-a a
	// voter again (rule 6: ls-b's Lease is fresh).
	h.renew("ls-a")
	h.patchFrontStatus("ls-a", map[string]any{"failoverIPs": nil})
	h.phase("ls-a", webfarmv1.FrontActive)
	h.renew("ls-b")
	h.failoverIP(ns, "vip", "ls-a a candidate and a voter again, ls-b kept", allOf(candidatesAre("ls-a", "ls-b"), ownerIs("ls-b", 3), votersAre("ls-a", "ls-b")))
}

// scenarioPlannedHandOff: draining the owner moves its addresses at once,
// through release and acknowledgement; undrained, the preferred node gets
// back only the address with autoFailback.
func scenarioPlannedHandOff(h *harness) {
	ns := "handoff"
	h.createNamespace(ns)
	h.createNode("ho-a", "10.6.0.1", map[string]string{"role": "ho"})
	h.createNode("ho-b", "10.6.0.2", map[string]string{"role": "ho"})
	h.renew("ho-a")
	h.renew("ho-b")
	h.createFarm(ns, "site", map[string]string{"role": "ho"}, "keep", "back")
	h.phase("ho-a", webfarmv1.FrontActive)
	h.phase("ho-b", webfarmv1.FrontActive)
	h.createFailoverIP(ns, "keep", "192.0.2.60", "ho-a", false)
	h.createFailoverIP(ns, "back", "192.0.2.61", "ho-a", true)
	for _, name := range []string{"keep", "back"} {
		h.failoverIP(ns, name, "owned by ho-a", ownerIs("ho-a", 1))
	}

	h.annotateDrain("ho-a", "true")
	for _, name := range []string{"keep", "back"} {
		h.failoverIP(ns, name, "release requested from ho-a", func(st *webfarmv1.FailoverIPStatus) error {
			if !st.ReleaseRequested {
				return fmt.Errorf("releaseRequested false")
			}
			return ownerIs("ho-a", 1)(st)
		})
		h.event("FailoverIP", name, corev1.EventTypeNormal, EventReleaseRequested)
	}
	h.ackRelease("ho-a", ns+"/keep", 1, ns+"/back", 1)
	for _, name := range []string{"keep", "back"} {
		fip := h.failoverIP(ns, name, "handed to ho-b at once", ownerIs("ho-b", 2))
		if !fip.Status.PreviousOwnerReleased || fip.Status.ReleaseRequested || fip.Status.PreviousOwner != "ho-a" {
			h.t.Errorf("%s after a planned hand-off: status %+v, want previousOwner ho-a released, no release requested", name, fip.Status)
		}
	}

	// ho-b announces both, as its agent does once it took them over.
	h.patchFrontStatus("ho-b", map[string]any{"failoverIPs": []webfarmv1.NodeFailoverIPStatus{
		{Name: ns + "/keep", UID: h.failoverIPUID(ns, "keep"), Epoch: 2, State: webfarmv1.VIPHolding},
		{Name: ns + "/back", UID: h.failoverIPUID(ns, "back"), Epoch: 2, State: webfarmv1.VIPHolding},
	}})

	h.annotateDrain("ho-a", nil)
	h.patchFrontStatus("ho-a", map[string]any{"failoverIPs": nil})
	h.failoverIP(ns, "back", "release requested from ho-b for the fail-back", func(st *webfarmv1.FailoverIPStatus) error {
		if !st.ReleaseRequested {
			return fmt.Errorf("releaseRequested false")
		}
		return ownerIs("ho-b", 2)(st)
	})
	h.patchFrontStatus("ho-b", map[string]any{"failoverIPs": []webfarmv1.NodeFailoverIPStatus{
		{Name: ns + "/keep", UID: h.failoverIPUID(ns, "keep"), Epoch: 2, State: webfarmv1.VIPHolding},
		{Name: ns + "/back", UID: h.failoverIPUID(ns, "back"), Epoch: 2, State: webfarmv1.VIPReleased},
	}})
	back := h.failoverIP(ns, "back", "back on ho-a", ownerIs("ho-a", 3))
	if !back.Status.PreviousOwnerReleased {
		h.t.Errorf("fail-back without previousOwnerReleased: %+v", back.Status)
	}
	// ho-a, undrained, is a candidate again, and already a voter of keep's
	// epoch 2: it was draining when that began, and draining fronts vote.
	// So keep stays as it is: no renewal, no new epoch.
	keep := h.failoverIP(ns, "keep", "kept by ho-b, with ho-a a voter already",
		allOf(candidatesAre("ho-a", "ho-b"), votersAre("ho-a", "ho-b"), ownerIs("ho-b", 2)))
	if keep.Status.ReleaseRequested || keep.Status.PreviousOwner != "ho-a" || !keep.Status.PreviousOwnerReleased {
		h.t.Errorf("without autoFailback, keep: status %+v, want no release requested, handed off from ho-a", keep.Status)
	}
}

// scenarioShutdownHandOff: an owner whose agent stops gracefully and says
// so hands its address over at once.
func scenarioShutdownHandOff(h *harness) {
	ns := "shutdown"
	h.createNamespace(ns)
	h.createNode("sd-a", "10.7.0.1", map[string]string{"role": "sd"})
	h.createNode("sd-b", "10.7.0.2", map[string]string{"role": "sd"})
	h.renew("sd-a")
	h.renew("sd-b")
	h.createFarm(ns, "site", map[string]string{"role": "sd"}, "vip")
	h.phase("sd-a", webfarmv1.FrontActive)
	h.phase("sd-b", webfarmv1.FrontActive)
	h.createFailoverIP(ns, "vip", "192.0.2.70", "sd-a", false)
	h.failoverIP(ns, "vip", "owned by sd-a", ownerIs("sd-a", 1))

	h.patchFrontStatus("sd-a", map[string]any{"shuttingDown": true})
	h.failoverIP(ns, "vip", "release requested from sd-a", func(st *webfarmv1.FailoverIPStatus) error {
		if !st.ReleaseRequested {
			return fmt.Errorf("releaseRequested false")
		}
		return nil
	})
	h.ackRelease("sd-a", ns+"/vip", 1)
	fip := h.failoverIP(ns, "vip", "handed to sd-b at once", ownerIs("sd-b", 2))
	if !fip.Status.PreviousOwnerReleased {
		h.t.Errorf("shutdown hand-off without previousOwnerReleased: %+v", fip.Status)
	}
}

// scenarioOwnerNodeDeleted: the owner's Node is deleted. Its FrontNode
// goes, but the address stays with it — asked to release — until its
// voter reports it unheard and its heartbeat has been silent for deadtime
// plus guard.
func scenarioOwnerNodeDeleted(h *harness) {
	ns := "nodegone"
	h.createNamespace(ns)
	h.createNode("ng-a", "10.8.0.1", map[string]string{"role": "ng"})
	h.createNode("ng-b", "10.8.0.2", map[string]string{"role": "ng"})
	h.renew("ng-a")
	h.renew("ng-b")
	h.createFarm(ns, "site", map[string]string{"role": "ng"}, "vip")
	h.phase("ng-a", webfarmv1.FrontActive)
	h.phase("ng-b", webfarmv1.FrontActive)
	h.createFailoverIP(ns, "vip", "192.0.2.80", "ng-a", false)
	h.failoverIP(ns, "vip", "owned by ng-a", ownerIs("ng-a", 1))

	if err := h.c.Delete(h.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "ng-a"}}); err != nil {
		h.t.Fatalf("deleting Node ng-a: %v", err)
	}
	h.frontGone("ng-a")
	h.failoverIP(ns, "vip", "ng-a, alive, asked to release", func(st *webfarmv1.FailoverIPStatus) error {
		if !st.ReleaseRequested {
			return fmt.Errorf("releaseRequested false")
		}
		return ownerIs("ng-a", 1)(st)
	})
	// ng-a's agent is gone with its node: its Lease falls silent and, a
	// deadtime later, its voter ng-b reports it unheard (failover v3: the
	// voters' word, not the Lease alone, tells that the owner is lost).
	h.clock.Step(time.Second)
	h.renew("ng-b")
	h.clock.Step(testDeadtime - time.Second + 100*time.Millisecond)
	h.reportUnheard("ng-b", ns, "vip", 1, testDeadtime)
	h.renew("ng-b")
	h.clock.Step(testGuard)
	fip := h.failoverIP(ns, "vip", "ng-b owns it once ng-a is fenced", ownerIs("ng-b", 2))
	if fip.Status.PreviousOwnerReleased {
		h.t.Errorf("a vanished owner counted as released: %+v", fip.Status)
	}
}

// ackRelease reports, as node's agent, the release of FailoverIPs given as
// name, epoch pairs.
func (h *harness) ackRelease(node string, pairs ...any) {
	h.t.Helper()
	var entries []webfarmv1.NodeFailoverIPStatus
	for i := 0; i < len(pairs); i += 2 {
		entries = append(entries, webfarmv1.NodeFailoverIPStatus{Name: pairs[i].(string), Epoch: int64(pairs[i+1].(int)), State: webfarmv1.VIPReleased})
	}
	h.patchFrontStatus(node, map[string]any{"failoverIPs": entries})
}

func ownerIs(owner string, epoch int64) func(*webfarmv1.FailoverIPStatus) error {
	return func(st *webfarmv1.FailoverIPStatus) error {
		if st.Owner != owner || st.Epoch != epoch {
			return fmt.Errorf("owner %q at epoch %d, want %q at %d", st.Owner, st.Epoch, owner, epoch)
		}
		return nil
	}
}

func readyIs(st *webfarmv1.FailoverIPStatus, status metav1.ConditionStatus, reason string) error {
	c := meta.FindStatusCondition(st.Conditions, webfarmv1.ConditionReady)
	if c == nil || c.Status != status || c.Reason != reason {
		return fmt.Errorf("Ready condition %+v, want %s/%s", c, status, reason)
	}
	return nil
}

func farmReadyIs(st *webfarmv1.WebFarmStatus, fronts int32, status metav1.ConditionStatus, reason string) error {
	c := meta.FindStatusCondition(st.Conditions, webfarmv1.ConditionReady)
	if st.FrontsTotal != fronts || c == nil || c.Status != status || c.Reason != reason {
		return fmt.Errorf("%d fronts, Ready %+v; want %d fronts, %s/%s", st.FrontsTotal, c, fronts, status, reason)
	}
	return nil
}

// farmStatus waits until WebFarm namespace/name's status satisfies cond.
func (h *harness) farmStatus(namespace, name, what string, cond func(*webfarmv1.WebFarmStatus) error) {
	h.t.Helper()
	eventually(h.t, fmt.Sprintf("WebFarm %s/%s: %s", namespace, name, what), func() error {
		farm := &webfarmv1.WebFarm{}
		if err := h.c.Get(h.ctx, types.NamespacedName{Namespace: namespace, Name: name}, farm); err != nil {
			return err
		}
		if farm.Status.ObservedGeneration != farm.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", farm.Status.ObservedGeneration, farm.Generation)
		}
		return cond(&farm.Status)
	})
}
