package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// withdrawal is why a FailoverIP may have no owner now: it is being deleted,
// its address is in conflict, or an earlier withdrawal is not yet proven.
type withdrawal struct {
	deleting bool
	// conflicts names the other FailoverIPs with the same address, as
	// "namespace/name", sorted.
	conflicts []string
}

// blocks tells whether nobody may be elected even once the address is
// proven held nowhere.
func (w withdrawal) blocks() bool { return w.deleting || len(w.conflicts) > 0 }

// lifecycle reconciles what comes before an election: the finalizer, and
// the withdrawal of a deleted or conflicting FailoverIP. elect is false when
// no election may run now.
func (r *FailoverIPReconciler) lifecycle(ctx context.Context, fip *webfarmv1.FailoverIP) (elect bool, err error) {
	if fip.DeletionTimestamp.IsZero() {
		if err := r.ensureFinalizer(ctx, fip); err != nil {
			return false, err
		}
	} else if !controllerutil.ContainsFinalizer(fip, webfarmv1.FailoverIPFinalizer) {
		return false, nil
	}
	conflicts, err := r.sameAddress(ctx, fip)
	if err != nil {
		return false, err
	}
	w := withdrawal{deleting: !fip.DeletionTimestamp.IsZero(), conflicts: conflicts}
	if !w.blocks() && !unproven(ownershipOf(fip.Status)) {
		return true, nil
	}
	res, err := r.withdraw(ctx, fip, w)
	if err != nil || w.blocks() || !res.Clear {
		return false, err
	}
	// Proven held nowhere: the election starts from the recorded release.
	fip.Status.PreviousOwnerReleased = res.PreviousOwnerReleased
	return true, nil
}

// withdraw takes the ownership away, writes it, and removes the finalizer
// of a deleted FailoverIP once the address is held nowhere.
func (r *FailoverIPReconciler) withdraw(ctx context.Context, fip *webfarmv1.FailoverIP, w withdrawal) (WithdrawalResult, error) {
	in, err := r.withdrawalInput(ctx, fip)
	if err != nil {
		return WithdrawalResult{}, err
	}
	res := Withdraw(in)
	req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(fip)}
	if res.RequeueAfter > 0 {
		r.wakeups.after(req, res.RequeueAfter)
	}
	if !w.blocks() && res.Clear {
		return res, nil // the election writes the status
	}
	if w.deleting && res.Clear {
		return res, r.removeFinalizer(ctx, fip, res)
	}
	before := fip.Status
	want := ownershipStatus(fip, ElectionResult{Ownership: res.Ownership, Voters: res.Voters, OwnerChanged: res.Withdrawn}, in.Now)
	setCondition(&want.Conditions, withdrawalCondition(fip, w, res), fip.Generation, in.Now)
	if failoverIPStatusEqual(want, before) {
		return res, nil
	}
	if err := r.updateStatus(ctx, fip, want); err != nil {
		return res, err
	}
	for _, e := range withdrawalEvents(before, w, res) {
		r.events.Eventf(fip, nil, e.kind, e.reason, actionWithdraw, "%s", e.note)
	}
	if res.Withdrawn {
		log.FromContext(ctx).Info("Ownership withdrawn", "failoverIP", klog.KObj(fip), "previousOwner", res.PreviousOwner, "epoch", res.Epoch, "deleting", w.deleting, "conflicts", w.conflicts)
	}
	return res, nil
}

// withdrawalInput gathers what Withdraw needs: the front that may hold the
// address, and what its agent reports of it.
func (r *FailoverIPReconciler) withdrawalInput(ctx context.Context, fip *webfarmv1.FailoverIP) (WithdrawalInput, error) {
	own := ownershipOf(fip.Status)
	in := WithdrawalInput{Now: r.clock.Now(), Deadtime: fip.Spec.Deadtime.Duration, Guard: fip.Spec.Guard.Duration,
		Presence: webfarmv1.PresenceWindow(fip.Spec.Deadtime.Duration), Current: own, Voters: fip.Status.Voters}
	holder := own.Owner
	if holder == "" {
		holder = own.PreviousOwner
	}
	if holder == "" {
		return in, nil
	}
	front, err := r.formerFront(ctx, fip, holder)
	if err != nil {
		return in, err
	}
	in.Holder = front
	node, err := r.frontNode(ctx, holder)
	if err != nil {
		return in, err
	}
	in.AcknowledgedEpoch = removedEpoch(node, fip)
	in.VoterFronts, err = r.voterFronts(ctx, fip, holder)
	return in, err
}

// voterFronts are what the election knows of fip's voters other than
// holder that have a FrontNode.
func (r *FailoverIPReconciler) voterFronts(ctx context.Context, fip *webfarmv1.FailoverIP, holder string) ([]ElectionFront, error) {
	var out []ElectionFront
	for _, v := range fip.Status.Voters {
		if v == holder {
			continue
		}
		front, err := r.frontNode(ctx, v)
		if err != nil {
			return out, err
		}
		if front == nil {
			continue
		}
		f, err := r.electionFront(ctx, fip, front, false)
		if err != nil {
			return out, err
		}
		out = append(out, f)
	}
	return out, nil
}

// removedEpoch is the latest epoch at which front's agent reports the
// address of this very object (same UID) not on its node; 0 when none, or
// when front is gone.
func removedEpoch(front *webfarmv1.FrontNode, fip *webfarmv1.FailoverIP) int64 {
	if front == nil {
		return 0
	}
	key := farmKey(fip.Namespace, fip.Name)
	var epoch int64
	for _, s := range front.Status.FailoverIPs {
		if s.Name == key && s.UID == fip.UID && (s.State == webfarmv1.VIPReleased || s.State == webfarmv1.VIPFenced) {
			epoch = max(epoch, s.Epoch)
		}
	}
	return epoch
}

// ensureFinalizer adds the finalizer, at the resourceVersion read so that
// no other finalizer is lost.
func (r *FailoverIPReconciler) ensureFinalizer(ctx context.Context, fip *webfarmv1.FailoverIP) error {
	if controllerutil.ContainsFinalizer(fip, webfarmv1.FailoverIPFinalizer) {
		return nil
	}
	before := fip.DeepCopy()
	controllerutil.AddFinalizer(fip, webfarmv1.FailoverIPFinalizer)
	if err := r.Patch(ctx, fip, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}), client.FieldOwner(ControllerName)); err != nil {
		return fmt.Errorf("adding the finalizer of FailoverIP %s/%s: %w", fip.Namespace, fip.Name, err)
	}
	r.written.record(before.ResourceVersion, fip)
	return nil
}

// removeFinalizer lets a deleted FailoverIP go: its address is held nowhere.
func (r *FailoverIPReconciler) removeFinalizer(ctx context.Context, fip *webfarmv1.FailoverIP, res WithdrawalResult) error {
	before := fip.DeepCopy()
	controllerutil.RemoveFinalizer(fip, webfarmv1.FailoverIPFinalizer)
	if err := r.Patch(ctx, fip, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}), client.FieldOwner(ControllerName)); err != nil {
		return fmt.Errorf("removing the finalizer of FailoverIP %s/%s: %w", fip.Namespace, fip.Name, err)
	}
	r.written.record(before.ResourceVersion, fip)
	note := fmt.Sprintf("The address is held nowhere (%s): the FailoverIP goes", res.How)
	r.events.Eventf(fip, nil, corev1.EventTypeNormal, EventAddressRemoved, actionWithdraw, "%s", note)
	log.FromContext(ctx).Info("Finalized", "failoverIP", klog.KObj(fip), "how", res.How, "epoch", res.Epoch)
	return nil
}

// sameAddress names, sorted, the other FailoverIPs of any namespace whose
// address is the same as fip's, however spelled.
func (r *FailoverIPReconciler) sameAddress(ctx context.Context, fip *webfarmv1.FailoverIP) ([]string, error) {
	others, err := r.failoverIPsWithAddress(ctx, fip.Spec.Address)
	if err != nil {
		return nil, err
	}
	var out []string
	for i := range others {
		if others[i].UID != fip.UID {
			out = append(out, farmKey(others[i].Namespace, others[i].Name))
		}
	}
	slices.Sort(out)
	return out, nil
}

// withdrawalCondition says why nobody owns the address, and what the
// controller waits for.
func withdrawalCondition(fip *webfarmv1.FailoverIP, w withdrawal, res WithdrawalResult) metav1.Condition {
	c := metav1.Condition{Type: webfarmv1.ConditionReady, Status: metav1.ConditionFalse}
	var wait string
	if !res.Clear {
		wait = fmt.Sprintf("node %s must remove the address first (ownership taken away at epoch %d): waiting for its webfarm-agent to report it, or for its heartbeat to be silent for deadtime plus guard",
			res.PreviousOwner, res.Epoch)
	}
	switch {
	case w.deleting:
		c.Reason = webfarmv1.ReasonDeleting
		c.Message = "Being deleted; " + wait
	case len(w.conflicts) > 0:
		c.Reason = webfarmv1.ReasonConflict
		c.Message = fmt.Sprintf("Address %s is also the address of FailoverIP %s: no node announces it while more than one FailoverIP has it",
			fip.Spec.Address, strings.Join(w.conflicts, ", "))
		if wait != "" {
			c.Message += "; " + wait
		}
	default:
		c.Reason = webfarmv1.ReasonAwaitingRelease
		c.Message = "Nobody may be given the address yet: " + wait
	}
	return c
}

// withdrawalEvents tell what a withdrawal changed.
func withdrawalEvents(old webfarmv1.FailoverIPStatus, w withdrawal, res WithdrawalResult) []eventSpec {
	var out []eventSpec
	if len(w.conflicts) > 0 && !w.deleting {
		if c := meta.FindStatusCondition(old.Conditions, webfarmv1.ConditionReady); c == nil || c.Reason != webfarmv1.ReasonConflict {
			out = append(out, eventSpec{corev1.EventTypeWarning, EventConflict,
				fmt.Sprintf("Same address as FailoverIP %s: announced by no node until only one remains", strings.Join(w.conflicts, ", "))})
		}
	}
	if res.Withdrawn {
		why := "being deleted"
		if !w.deleting {
			why = "in conflict with " + strings.Join(w.conflicts, ", ")
		}
		out = append(out, eventSpec{corev1.EventTypeNormal, EventOwnershipWithdrawn,
			fmt.Sprintf("Took the address away from %s at epoch %d: %s", res.PreviousOwner, res.Epoch, why)})
	}
	return out
}
