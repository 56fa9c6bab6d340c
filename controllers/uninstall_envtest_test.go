package controllers

import (
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// scenarioUninstallHeld (issue 14): the documented uninstall deletes the
// farm and its held FailoverIP in one command. No farm selects the fronts
// any more, but their FrontNodes, where the agents report, stay while the
// FailoverIP waits for its last owner's word; the object goes on that
// word and never before, and then the FrontNodes go too.
func scenarioUninstallHeld(h *harness) {
	ns := "uninstall"
	fip, owners := h.uninstallHeldPair(ns, "un", [2]string{"un-a", "un-b"}, [2]string{"10.13.0.1", "10.13.0.2"}, "192.0.2.92")
	h.stillThere(ns, "vip", "un-a has not reported the address gone")

	h.reportFailoverIP("un-a", webfarmv1.NodeFailoverIPStatus{Name: ns + "/vip", UID: fip.UID, Epoch: 2, State: webfarmv1.VIPReleased})
	start := time.Now()
	h.failoverIPGone(ns, "vip")
	h.t.Logf("FailoverIP gone %v after its last owner's report", time.Since(start).Round(time.Millisecond))
	h.frontGone("un-a")
	h.frontGone("un-b")
	owners.check(h.t)
}

// scenarioUninstallSilentOwner (issue 14): the same uninstall while the
// owner's agent is silent. Its voter's FrontNode stays, so that the voter
// can say it vouches for nobody any more; the object goes only once the
// owner's Lease has been silent for the presence window and the voter has
// so reported: until then the owner may hold through that voter.
func scenarioUninstallSilentOwner(h *harness) {
	ns := "uninstall-silent"
	h.activePair(ns, "us", [2]string{"us-a", "us-b"}, [2]string{"10.14.0.1", "10.14.0.2"}, "vip")
	owners := h.recordOwners(ns)
	h.createFailoverIP(ns, "vip", "192.0.2.93", "us-a", false)
	h.failoverIP(ns, "vip", "owned by us-a, both fronts voters", allOf(ownerIs("us-a", 1), votersAre("us-a", "us-b")))

	// us-a falls silent; us-b keeps renewing.
	h.clock.Step(time.Second)
	h.renew("us-b")
	h.uninstall(ns)
	fip := h.failoverIP(ns, "vip", "taken away from us-a at epoch 2", withdrawnFrom("us-a", 2, webfarmv1.ReasonDeleting))
	h.frontUnselected("us-a", "its agent may come back and report the address gone")
	h.frontUnselected("us-b", "a voter of the withdrawn epoch")

	for left := testPresence - time.Second; left > 0; left -= testGuard {
		h.renew("us-b")
		h.clock.Step(min(left, testGuard))
	}
	h.stillThere(ns, "vip", "us-a silent for the presence window, but us-b has not reported the withdrawal")

	h.reportFailoverIP("us-b", webfarmv1.NodeFailoverIPStatus{Name: ns + "/vip", UID: fip.UID, Epoch: 2,
		State: webfarmv1.VIPOwnerUnheard, UnheardAfter: &metav1.Duration{Duration: testDeadtime}})
	h.failoverIPGone(ns, "vip")
	h.frontGone("us-a")
	h.frontGone("us-b")
	owners.check(h.t)
}

// scenarioUninstallFrontNodesDeleted (issue 14, on a real cluster): the
// uninstall deletes the FrontNodes too. `kubectl delete failoverip,webfarm
// --all` reads "webfarm" as the category of every webfarm.io kind, so it
// deletes the FrontNodes, where the agents report, beside the farm and the
// FailoverIP. The FrontNodes deleted once the farm is gone, the worst
// order, come back while the FailoverIP awaits their agents' word: the
// holder's report, written on its new FrontNode, lets the object go, and
// nothing before it does.
func scenarioUninstallFrontNodesDeleted(h *harness) {
	ns := "uninstall-fronts"
	fip, owners := h.uninstallHeldPair(ns, "uf", [2]string{"uf-a", "uf-b"}, [2]string{"10.17.0.1", "10.17.0.2"}, "192.0.2.96")
	deleted := map[string]types.UID{}
	for _, node := range []string{"uf-a", "uf-b"} {
		deleted[node] = h.deleteFrontNode(node)
	}
	for node, uid := range deleted {
		h.front(node, "created again, with no farm, for its agent's report", func(f *webfarmv1.FrontNode) error {
			if f.UID == uid {
				return fmt.Errorf("the deleted FrontNode (deletion %v)", f.DeletionTimestamp)
			}
			return hasFarms()(f)
		})
	}
	h.stillThere(ns, "vip", "uf-a has not reported the address gone")

	h.reportFailoverIP("uf-a", webfarmv1.NodeFailoverIPStatus{Name: ns + "/vip", UID: fip.UID, Epoch: 2, State: webfarmv1.VIPReleased})
	h.failoverIPGone(ns, "vip")
	h.frontGone("uf-a")
	h.frontGone("uf-b")
	owners.check(h.t)
}

// uninstallHeldPair makes two fronts, labelled role=<role>, of a farm "site"
// in ns, and a FailoverIP "vip" at address that nodes[0] holds, both
// fronts its voters; then it uninstalls them, and returns once the
// ownership was taken away at epoch 2 with both FrontNodes kept, with no
// farm, for their agents' reports.
func (h *harness) uninstallHeldPair(ns, role string, nodes, ips [2]string, address string) (*webfarmv1.FailoverIP, *ownerRecorder) {
	h.t.Helper()
	owner, voter := nodes[0], nodes[1]
	h.activePair(ns, role, nodes, ips, "vip")
	owners := h.recordOwners(ns)
	h.createFailoverIP(ns, "vip", address, owner, false)
	fip := h.failoverIP(ns, "vip", "owned by "+owner+", both fronts voters", allOf(ownerIs(owner, 1), votersAre(owner, voter)))
	h.hold(owner, ns, "vip", 1)

	h.uninstall(ns)
	h.failoverIP(ns, "vip", "taken away from "+owner+" at epoch 2", withdrawnFrom(owner, 2, webfarmv1.ReasonDeleting))
	h.frontUnselected(owner, "its agent must report the address gone")
	h.frontUnselected(voter, "a voter of the withdrawn epoch")
	return fip, owners
}

// deleteFrontNode deletes node's FrontNode, as a user may, and returns
// the UID it had.
func (h *harness) deleteFrontNode(node string) types.UID {
	h.t.Helper()
	front := &webfarmv1.FrontNode{}
	if err := h.c.Get(h.ctx, types.NamespacedName{Name: node}, front); err != nil {
		h.t.Fatalf("reading FrontNode %s: %v", node, err)
	}
	if err := h.c.Delete(h.ctx, front, client.Preconditions{UID: &front.UID}); err != nil {
		h.t.Fatalf("deleting FrontNode %s: %v", node, err)
	}
	return front.UID
}

// uninstall deletes, as `kubectl delete webfarms,failoverips --all` does,
// the farm "site" of namespace, then its FailoverIP "vip".
func (h *harness) uninstall(namespace string) {
	h.t.Helper()
	farm := &webfarmv1.WebFarm{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "site"}}
	if err := h.c.Delete(h.ctx, farm); err != nil {
		h.t.Fatalf("deleting WebFarm %s/site: %v", namespace, err)
	}
	h.deleteFailoverIP(namespace, "vip")
}

// frontUnselected waits until the controller has seen that no farm
// selects node: its FrontNode lists none. It fails at once if the
// FrontNode was deleted instead, although a FailoverIP still needs its
// agent's word (why).
func (h *harness) frontUnselected(node, why string) {
	h.t.Helper()
	var gone bool
	eventually(h.t, "FrontNode "+node+" lists no farm", func() error {
		front := &webfarmv1.FrontNode{}
		err := h.c.Get(h.ctx, types.NamespacedName{Name: node}, front)
		if apierrors.IsNotFound(err) {
			gone = true
			return nil
		}
		if err != nil {
			return err
		}
		if len(front.Spec.Farms) > 0 {
			return fmt.Errorf("farms %v", front.Spec.Farms)
		}
		return nil
	})
	if gone {
		h.t.Fatalf("FrontNode %s deleted while a FailoverIP still needs its agent's report: %s", node, why)
	}
}

// scenarioOwnerUnselected: the owner's Node loses the label that made it
// a front. Its FrontNode stays, with no farm, while the FailoverIP names
// it: the controller asks it to release, and its agent's report, written
// there, hands the address over at once. The FrontNode goes once nothing
// names the node any more.
func scenarioOwnerUnselected(h *harness) {
	ns := "unselected"
	h.activePair(ns, "ul", [2]string{"ul-a", "ul-b"}, [2]string{"10.16.0.1", "10.16.0.2"}, "vip")
	h.createFailoverIP(ns, "vip", "192.0.2.95", "ul-a", false)
	h.failoverIP(ns, "vip", "owned by ul-a", ownerIs("ul-a", 1))
	h.hold("ul-a", ns, "vip", 1)

	h.patchNode("ul-a", "labels", map[string]any{"role": nil})
	h.frontUnselected("ul-a", "it owns the address, and must say it released it")
	h.failoverIP(ns, "vip", "release requested from ul-a", func(st *webfarmv1.FailoverIPStatus) error {
		if !st.ReleaseRequested {
			return fmt.Errorf("releaseRequested false")
		}
		return ownerIs("ul-a", 1)(st)
	})
	h.reportFailoverIP("ul-a", webfarmv1.NodeFailoverIPStatus{Name: ns + "/vip", UID: h.failoverIPUID(ns, "vip"), Epoch: 1, State: webfarmv1.VIPReleased})
	fip := h.failoverIP(ns, "vip", "handed to ul-b at once", allOf(ownerIs("ul-b", 2), votersAre("ul-b")))
	if !fip.Status.PreviousOwnerReleased {
		h.t.Errorf("hand-off from an unselected owner without previousOwnerReleased: %+v", fip.Status)
	}
	h.frontGone("ul-a")
}
