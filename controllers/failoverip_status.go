package controllers

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// ownershipOf reads the fenced ownership kept in a FailoverIP's status.
func ownershipOf(st webfarmv1.FailoverIPStatus) Ownership {
	return Ownership{
		Owner:                 st.Owner,
		Epoch:                 st.Epoch,
		PreviousOwner:         st.PreviousOwner,
		PreviousOwnerReleased: st.PreviousOwnerReleased,
		ReleaseRequested:      st.ReleaseRequested,
		Timing:                timingOf(st.FencingTiming),
	}
}

// timingOf reads status.fencingTiming; zero when the status has none yet,
// so that the spec's values apply.
func timingOf(t *webfarmv1.FencingTiming) Timing {
	if t == nil {
		return Timing{}
	}
	return Timing{Deadtime: t.Deadtime.Duration, Guard: t.Guard.Duration}
}

// failoverIPStatus is the status to write after an election. owner is what
// the owner's agent reports of the address at the current epoch (nil when
// it reports nothing yet).
func failoverIPStatus(fip *webfarmv1.FailoverIP, res ElectionResult, owner *webfarmv1.NodeFailoverIPStatus, now time.Time) webfarmv1.FailoverIPStatus {
	st := ownershipStatus(fip, res, now)
	setCondition(&st.Conditions, readyCondition(res, owner), fip.Generation, now)
	return st
}

// ownershipStatus is fip's status with the ownership and candidates of res,
// the transition it counts, and the spec's timing for the agents to act
// on; conditions unchanged.
func ownershipStatus(fip *webfarmv1.FailoverIP, res ElectionResult, now time.Time) webfarmv1.FailoverIPStatus {
	st := *fip.Status.DeepCopy()
	st.ObservedGeneration = fip.Generation
	if res.Epoch != st.Epoch && st.Owner != "" {
		// Kept across epochs without an owner: the history a hook needs
		// to tell that nobody else held the address since this node did.
		st.LastOwner, st.LastOwnerEpoch = st.Owner, st.Epoch
	}
	if res.Epoch != st.Epoch {
		// A witness proves its owner alive at its epoch only.
		st.OwnerWitness = nil
	}
	st.OwnerWitnessCounted = true
	st.Owner, st.Epoch = res.Owner, res.Epoch
	st.PreviousOwner, st.PreviousOwnerReleased = res.PreviousOwner, res.PreviousOwnerReleased
	st.ReleaseRequested = res.ReleaseRequested
	publishTiming(&st, fip, res.Timing)
	st.Candidates = res.Candidates
	st.Voters = res.Voters
	st.OwnerRenewal = res.OwnerRenewal
	if res.OwnerChanged {
		t := metav1.NewTime(now.Truncate(time.Second))
		st.LastTransitionTime = &t
		st.Transitions++
	}
	return st
}

// publishTiming writes the spec's timing for the agents to act on, and the
// fencing timing: fencing, raised in the same write to cover what is
// published, since an agent may act on it as soon as it reads it.
func publishTiming(st *webfarmv1.FailoverIPStatus, fip *webfarmv1.FailoverIP, fencing Timing) {
	spec := fip.Spec
	st.Timing = &webfarmv1.AgentTiming{Keepalive: spec.Keepalive, Deadtime: spec.Deadtime, Guard: spec.Guard, Generation: fip.Generation}
	fencing = fencing.AtLeast(Timing{Deadtime: spec.Deadtime.Duration, Guard: spec.Guard.Duration})
	st.FencingTiming = &webfarmv1.FencingTiming{
		Deadtime: metav1.Duration{Duration: fencing.Deadtime},
		Guard:    metav1.Duration{Duration: fencing.Guard},
	}
}

// readyCondition tells whether a node serves the address, and if not, what
// the controller waits for.
func readyCondition(res ElectionResult, owner *webfarmv1.NodeFailoverIPStatus) metav1.Condition {
	c := metav1.Condition{Type: webfarmv1.ConditionReady, Status: metav1.ConditionTrue, Reason: res.Reason}
	switch res.Reason {
	case webfarmv1.ReasonOwned:
		if owner == nil || owner.State != webfarmv1.VIPHolding {
			return notAnnounced(res, owner)
		}
		c.Message = fmt.Sprintf("Node %s holds and announces the address at epoch %d", res.Owner, res.Epoch)
	case webfarmv1.ReasonAwaitingRelease:
		c.Message = fmt.Sprintf("Node %s is asked to release the address for a planned hand-off to %s", res.Owner, orNobody(res.Successor))
	case ReasonHandOffBlocked:
		c.Message = fmt.Sprintf("Node %s keeps the address: no other front is a candidate to take it over", res.Owner)
	case webfarmv1.ReasonAwaitingFence:
		c.Status = metav1.ConditionFalse
		c.Message = fmt.Sprintf("Owner %s stopped renewing its heartbeat; the address moves once it must have stopped announcing (deadtime plus guard)", res.Owner)
	default:
		c.Status = metav1.ConditionFalse
		c.Message = "No front may hold the address: every selected front is draining, shutting down or not renewing its heartbeat Lease; check the webfarm-agents and the frontSelector"
	}
	return c
}

// notAnnounced: the owner's agent does not (yet) report holding the
// address, e.g. while it waits for the previous owner to have stopped.
func notAnnounced(res ElectionResult, owner *webfarmv1.NodeFailoverIPStatus) metav1.Condition {
	c := metav1.Condition{Type: webfarmv1.ConditionReady, Status: metav1.ConditionFalse, Reason: webfarmv1.ReasonOwnerNotAnnounced}
	if owner == nil {
		c.Message = fmt.Sprintf("Node %s owns the address at epoch %d; its webfarm-agent has not reported holding it yet", res.Owner, res.Epoch)
		return c
	}
	c.Message = fmt.Sprintf("Node %s owns the address at epoch %d; its webfarm-agent reports %s", res.Owner, res.Epoch, owner.State)
	if owner.Message != "" {
		c.Message += ": " + owner.Message
	}
	return c
}

func orNobody(node string) string {
	if node == "" {
		return "nobody"
	}
	return node
}

// eventSpec is an event to send on a FailoverIP.
type eventSpec struct {
	kind, reason, note string
}

// electionEvents are the events that tell what changed between the status
// before an election and the one it writes.
func electionEvents(old, cur webfarmv1.FailoverIPStatus, res ElectionResult) []eventSpec {
	var out []eventSpec
	oldReason := ""
	if c := meta.FindStatusCondition(old.Conditions, webfarmv1.ConditionReady); c != nil {
		oldReason = c.Reason
	}
	if res.OwnerChanged && cur.Owner != "" {
		how := "after its heartbeat had been stale for deadtime plus guard"
		if cur.PreviousOwnerReleased {
			how = "at once: the previous owner released it"
		}
		out = append(out, eventSpec{corev1.EventTypeNormal, EventOwnerChanged,
			fmt.Sprintf("Owner %s -> %s at epoch %d, %s", orNobody(old.Owner), cur.Owner, cur.Epoch, how)})
	}
	if cur.ReleaseRequested && !old.ReleaseRequested {
		out = append(out, eventSpec{corev1.EventTypeNormal, EventReleaseRequested,
			fmt.Sprintf("Asked %s to release the address for a planned hand-off to %s", cur.Owner, orNobody(res.Successor))})
	}
	if res.Reason == webfarmv1.ReasonAwaitingFence && oldReason != res.Reason {
		out = append(out, eventSpec{corev1.EventTypeWarning, EventAwaitingFence,
			fmt.Sprintf("Owner %s stopped renewing its heartbeat; the address moves once it must have stopped announcing", cur.Owner)})
	}
	if res.Reason == webfarmv1.ReasonNoCandidate && (oldReason != res.Reason || res.OwnerChanged) {
		out = append(out, eventSpec{corev1.EventTypeWarning, EventNoCandidate,
			fmt.Sprintf("No front may hold the address (epoch %d): nobody holds it", cur.Epoch)})
	}
	return out
}

func failoverIPStatusEqual(a, b webfarmv1.FailoverIPStatus) bool {
	return equality.Semantic.DeepEqual(a, b)
}
