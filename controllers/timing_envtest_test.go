package controllers

import (
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// scenarioTimingEditWhileOwnerIsolated (issue 9, finding 4): deadtime is cut
// from 10s to 2s while the owner is cut off from the API server and its
// peers, so it never sees the edit and keeps holding for up to 10s minus
// guard. The address moves only after the old deadtime plus guard, and only
// on a voter's report that it waited the old deadtime (failover v3: a voter
// that acted on the cut reports too early, and is not counted); the new
// timing applies once the owner reports acting on the new generation. A
// raise applies at once.
func scenarioTimingEditWhileOwnerIsolated(h *harness) {
	const ns = "timing"
	slow := Timing{Deadtime: 10 * time.Second, Guard: testGuard}
	h.twoFrontFarm(ns, "te", "10.9.0")
	h.createFailoverIPTimed(ns, "vip", "192.0.2.90", "te-a", slow)
	h.failoverIP(ns, "vip", "owned by te-a under deadtime 10s", fencedBy("te-a", 1, slow))
	h.report("te-a", ns, "vip", 1, 1)

	// te-a is cut off: its last renewal is now. The spec is cut to 2s.
	h.setTiming(ns, "vip", Timing{Deadtime: testDeadtime, Guard: testGuard})
	h.failoverIP(ns, "vip", "generation 2 seen, still fenced by the old timing", func(st *webfarmv1.FailoverIPStatus) error {
		if st.ObservedGeneration != 2 {
			return fmt.Errorf("observedGeneration %d", st.ObservedGeneration)
		}
		return fencedBy("te-a", 1, slow)(st)
	})

	// te-b acts on the cut: 2s after te-a's last renewal it reports te-a
	// unheard after 2s. Past the new deadtime plus guard, te-a may still
	// hold: it keeps the address. (te-b renews all along.)
	h.clock.Step(1500 * time.Millisecond)
	h.renew("te-b")
	h.clock.Step(600 * time.Millisecond)
	h.reportUnheard("te-b", ns, "vip", 1, testDeadtime)
	h.clock.Step(900 * time.Millisecond)
	h.renew("te-b")
	h.failoverIP(ns, "vip", "3s after te-a's last renewal, reported unheard after 2s: te-a kept", fencedBy("te-a", 1, slow))
	for range 4 {
		h.clock.Step(1500 * time.Millisecond)
		h.renew("te-b")
	}
	// 10.5s after te-a's last renewal: the old deadtime plus guard. te-b's
	// report after 2s still moves nothing; once te-b has waited the old
	// deadtime and says so, the address moves at once.
	h.clock.Step(slow.fenceAfter() - 9*time.Second)
	h.failoverIP(ns, "vip", "past the old deadtime plus guard, with only a report after 2s: te-a kept", fencedBy("te-a", 1, slow))
	h.reportUnheard("te-b", ns, "vip", 1, slow.Deadtime)
	h.failoverIP(ns, "vip", "owned by te-b past the old deadtime plus guard, reported unheard after 10s", fencedBy("te-b", 2, slow))

	// te-b acts on generation 2: the cut applies.
	h.report("te-b", ns, "vip", 2, 2)
	fast := Timing{Deadtime: testDeadtime, Guard: testGuard}
	h.failoverIP(ns, "vip", "fenced by the new timing once te-b reports generation 2", fencedBy("te-b", 2, fast))

	// A raise applies at once, before any report.
	h.setTiming(ns, "vip", slow)
	h.failoverIP(ns, "vip", "fenced by the raised timing at once", fencedBy("te-b", 2, slow))
}

// scenarioForeignLeaseEdit (issue 9, finding 7): only the node's own agent
// renewing its Lease keeps it alive. Edits by anyone else — another holder,
// or a label added without a renewal — keep neither the front Active nor
// the address on a silent owner.
func scenarioForeignLeaseEdit(h *harness) {
	const ns = "foreign"
	h.twoFrontFarm(ns, "fl", "10.10.0")
	h.createFailoverIP(ns, "vip", "192.0.2.91", "fl-a", false)
	h.failoverIP(ns, "vip", "owned by fl-a", ownerIs("fl-a", 1))

	// fl-a's agent is gone; someone else keeps touching its Lease.
	h.clock.Step(time.Second)
	h.editLease("fl-a", func(l *coordinationv1.Lease) { l.Labels = map[string]string{"touched": "yes"} })
	h.renew("fl-b")
	h.clock.Step(900 * time.Millisecond)
	h.editLease("fl-a", func(l *coordinationv1.Lease) {
		now := metav1.NewMicroTime(time.Now())
		l.Spec.HolderIdentity, l.Spec.RenewTime = ptr.To("intruder"), &now
	})
	h.renew("fl-b")
	// fl-b, a voter, has not heard fl-a for a deadtime and says so (failover
	// v3): the address moves deadtime plus guard after fl-a's last own
	// renewal, not after the foreign edits (1.9s later).
	h.clock.Step(200 * time.Millisecond)
	h.reportUnheard("fl-b", ns, "vip", 1, testDeadtime)
	h.clock.Step(testDeadtime + testGuard - 2100*time.Millisecond)
	h.failoverIP(ns, "vip", "owned by fl-b deadtime plus guard after fl-a's last own renewal", ownerIs("fl-b", 2))

	// fl-a is Down once the presence window has passed since its last own
	// renewal; counting the intruder's renewal would keep it Active 1.9s
	// longer.
	h.renew("fl-b")
	h.clock.Step(testPresence - testDeadtime - testGuard + 100*time.Millisecond)
	h.phase("fl-a", webfarmv1.FrontDown)
}

// twoFrontFarm creates namespace ns with a farm "site" listing FailoverIP
// "vip", over two live fronts <role>-a and <role>-b at <subnet>.1 and .2,
// both Active before the address exists, so that its first election sees
// both.
func (h *harness) twoFrontFarm(ns, role, subnet string) {
	h.t.Helper()
	h.createNamespace(ns)
	for i, node := range []string{role + "-a", role + "-b"} {
		h.createNode(node, fmt.Sprintf("%s.%d", subnet, i+1), map[string]string{"role": role})
		h.renew(node)
	}
	h.createFarm(ns, "site", map[string]string{"role": role}, "vip")
	h.phase(role+"-a", webfarmv1.FrontActive)
	h.phase(role+"-b", webfarmv1.FrontActive)
}

// fencedBy: owner at epoch, fenced by timing.
func fencedBy(owner string, epoch int64, timing Timing) func(*webfarmv1.FailoverIPStatus) error {
	return func(st *webfarmv1.FailoverIPStatus) error {
		if err := ownerIs(owner, epoch)(st); err != nil {
			return err
		}
		if got := timingOf(st.FencingTiming); got != timing {
			return fmt.Errorf("fencingTiming %+v, want %+v", got, timing)
		}
		return nil
	}
}

// createFailoverIPTimed creates a FailoverIP like createFailoverIP, with
// timing's deadtime and guard.
func (h *harness) createFailoverIPTimed(namespace, name, address, preferred string, timing Timing) {
	h.t.Helper()
	fip := &webfarmv1.FailoverIP{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: webfarmv1.FailoverIPSpec{
			Address: address, PreferredNode: preferred,
			Keepalive: metav1.Duration{Duration: 500 * time.Millisecond},
			Deadtime:  metav1.Duration{Duration: timing.Deadtime},
			Guard:     metav1.Duration{Duration: timing.Guard},
		},
	}
	if err := h.c.Create(h.ctx, fip); err != nil {
		h.t.Fatalf("creating FailoverIP %s/%s: %v", namespace, name, err)
	}
}

// setTiming edits a FailoverIP's deadtime and guard, as its user does.
func (h *harness) setTiming(namespace, name string, timing Timing) {
	h.t.Helper()
	patch := fmt.Appendf(nil, `{"spec":{"deadtime":%q,"guard":%q}}`, timing.Deadtime, timing.Guard)
	fip := &webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if err := h.c.Patch(h.ctx, fip, client.RawPatch(types.MergePatchType, patch)); err != nil {
		h.t.Fatalf("editing the timing of FailoverIP %s/%s: %v", namespace, name, err)
	}
}

// report says, as node's agent, that it holds FailoverIP namespace/name at
// epoch, decided with generation.
func (h *harness) report(node, namespace, name string, epoch, generation int64) {
	h.t.Helper()
	h.patchFrontStatus(node, map[string]any{"failoverIPs": []webfarmv1.NodeFailoverIPStatus{{
		Name: farmKey(namespace, name), Epoch: epoch, State: webfarmv1.VIPHolding, ObservedGeneration: generation,
	}}})
}

// editLease changes node's Lease as someone other than its agent.
func (h *harness) editLease(node string, edit func(*coordinationv1.Lease)) {
	h.t.Helper()
	lease := &coordinationv1.Lease{}
	key := types.NamespacedName{Namespace: h.namespace, Name: webfarmv1.NodeLeaseName(node)}
	if err := h.c.Get(h.ctx, key, lease); err != nil {
		h.t.Fatalf("reading the Lease of %s: %v", node, err)
	}
	edit(lease)
	if err := h.c.Update(h.ctx, lease); err != nil {
		h.t.Fatalf("editing the Lease of %s: %v", node, err)
	}
}
