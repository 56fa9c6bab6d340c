package controllers

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// scenarioWitnessKeepsOwner: an owner whose Lease is silent and whose only
// other voter reports it unheard, as after a hard loss, stays owner while
// it writes witnesses in the status; the address moves deadtime plus guard
// after the last witness the controller saw, not after the last renewal.
func scenarioWitnessKeepsOwner(h *harness) {
	ns := "witness"
	h.activePair(ns, "wt", [2]string{"wt-a", "wt-b"}, [2]string{"10.17.0.1", "10.17.0.2"}, "vip")
	h.createFailoverIP(ns, "vip", "192.0.2.170", "wt-a", false)
	h.failoverIP(ns, "vip", "owned by wt-a", ownerIs("wt-a", 1))
	h.hold("wt-a", ns, "vip", 1)

	// wt-a's Lease falls silent and wt-b reports it unheard, but wt-a
	// writes a witness. The controller sees it at the latest when the
	// Lease has been silent for deadtime plus guard, when it would have
	// moved the address without it.
	h.renew("wt-b")
	h.clock.Step(testDeadtime + 100*time.Millisecond)
	h.reportUnheard("wt-b", ns, "vip", 1, testDeadtime)
	written := h.clock.Now()
	h.witness("wt-a", ns, "vip", 1)
	h.renew("wt-b")
	h.clock.Step(testGuard)
	h.renew("wt-b")
	h.clock.Step(testDeadtime + testGuard + 100*time.Millisecond)
	fip := h.failoverIP(ns, "vip", "owned by wt-b, deadtime plus guard after wt-a's witness was seen", ownerIs("wt-b", 2))
	moved := fip.Status.LastTransitionTime
	if earliest := written.Add(testDeadtime + testGuard).Truncate(time.Second); moved == nil || moved.Time.Before(earliest) {
		h.t.Errorf("the address moved at %v, want at %v or later: deadtime plus guard after the witness (written at %v)", moved, earliest, written)
	}
	if fip.Status.OwnerWitness != nil {
		h.t.Errorf("status.ownerWitness = %+v at epoch 2, want none: a witness proves its epoch only", fip.Status.OwnerWitness)
	}
}

// witness writes node's witness of FailoverIP namespace/name at epoch as
// its agent does (agent/witness): a JSON patch that tests the owner and
// the epoch; it fails the test when the patch does.
func (h *harness) witness(node, namespace, name string, epoch int64) {
	h.t.Helper()
	patch := fmt.Sprintf(`[{"op":"test","path":"/status/owner","value":%q},{"op":"test","path":"/status/epoch","value":%d},`+
		`{"op":"add","path":"/status/ownerWitness","value":{"node":%q,"epoch":%d,"renewal":%q}}]`,
		node, epoch, node, epoch, time.Now().Format(time.RFC3339Nano))
	fip := &webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if err := h.c.Status().Patch(h.ctx, fip, client.RawPatch(types.JSONPatchType, []byte(patch))); err != nil {
		h.t.Fatalf("writing the witness of %s at epoch %d: %v", node, epoch, err)
	}
	// The controller reads it from its cache: wait until that holds it,
	// as a live agent's next witness would come a keepalive later anyway.
	eventually(h.t, "the controller's cache holds the witness of "+node, func() error {
		var cached webfarmv1.FailoverIP
		if err := h.cache.Get(h.ctx, client.ObjectKeyFromObject(fip), &cached); err != nil {
			return err
		}
		if w := cached.Status.OwnerWitness; w == nil || w.Node != node || w.Epoch != epoch {
			return fmt.Errorf("witness %+v", w)
		}
		return nil
	})
}
