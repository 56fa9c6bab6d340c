package controllers

import (
	"testing"
	"time"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// Timings of the edits below: deadtime 10s cut to 2s, or 2s raised to 10s,
// guard 500ms throughout.
var (
	slowTiming = Timing{Deadtime: 10 * time.Second, Guard: 500 * time.Millisecond}
	fastTiming = Timing{Deadtime: 2 * time.Second, Guard: 500 * time.Millisecond}
)

// TestElectTimingEdits (issue 9, finding 4): an owner cut off from the API
// server keeps the deadtime and guard it last saw, so a silent owner is
// fenced only after the longest deadtime plus guard it may still be using.
func TestElectTimingEdits(t *testing.T) {
	tests := []struct {
		name string
		// status is the fencing timing kept in the status (zero: none yet);
		// spec is the spec's at generation 2.
		status, spec Timing
		// ownerGeneration is what the owner reports at the current epoch.
		ownerGeneration int64
		// silent is how long the owner's Lease has not changed.
		silent      time.Duration
		want        Ownership
		wantReason  string
		wantRequeue time.Duration
	}{{
		name:   "deadtime cut while the owner is silent: fenced only after the old deadtime plus guard",
		status: slowTiming, spec: fastTiming, ownerGeneration: 1,
		silent:      3 * time.Second,
		want:        Ownership{Owner: "a", Epoch: 3, Timing: slowTiming},
		wantReason:  webfarmv1.ReasonAwaitingFence,
		wantRequeue: slowTiming.fenceAfter() - 3*time.Second,
	}, {
		name:   "deadtime cut, owner never reported: the old timing holds",
		status: slowTiming, spec: fastTiming, ownerGeneration: 0,
		silent:      slowTiming.fenceAfter() - time.Nanosecond,
		want:        Ownership{Owner: "a", Epoch: 3, Timing: slowTiming},
		wantReason:  webfarmv1.ReasonAwaitingFence,
		wantRequeue: time.Nanosecond,
	}, {
		name:   "deadtime cut: at the old deadtime plus guard the address moves, the old timing kept for the new epoch",
		status: slowTiming, spec: fastTiming, ownerGeneration: 1,
		silent:     slowTiming.fenceAfter(),
		want:       Ownership{Owner: "b", Epoch: 4, PreviousOwner: "a", Timing: slowTiming},
		wantReason: webfarmv1.ReasonOwned,
		// b is judged by the spec's deadtime.
		wantRequeue: fastTiming.Deadtime,
	}, {
		name:   "deadtime cut and the owner reports the new generation: the new timing applies",
		status: slowTiming, spec: fastTiming, ownerGeneration: 2,
		silent:      fastTiming.fenceAfter(),
		want:        Ownership{Owner: "b", Epoch: 4, PreviousOwner: "a", Timing: fastTiming},
		wantReason:  webfarmv1.ReasonOwned,
		wantRequeue: fastTiming.Deadtime,
	}, {
		name:   "an owner reporting a generation the controller has not seen yet proves nothing",
		status: slowTiming, spec: fastTiming, ownerGeneration: 3,
		silent:      fastTiming.fenceAfter(),
		want:        Ownership{Owner: "a", Epoch: 3, Timing: slowTiming},
		wantReason:  webfarmv1.ReasonAwaitingFence,
		wantRequeue: slowTiming.fenceAfter() - fastTiming.fenceAfter(),
	}, {
		name:   "deadtime raised: the new timing applies at once, before the owner reports it",
		status: fastTiming, spec: slowTiming, ownerGeneration: 1,
		silent:      slowTiming.Deadtime + 200*time.Millisecond,
		want:        Ownership{Owner: "a", Epoch: 3, Timing: slowTiming},
		wantReason:  webfarmv1.ReasonAwaitingFence,
		wantRequeue: slowTiming.Guard - 200*time.Millisecond,
	}, {
		name:   "guard raised alone applies at once too",
		status: fastTiming, spec: Timing{Deadtime: fastTiming.Deadtime, Guard: time.Second}, ownerGeneration: 1,
		silent:      fastTiming.fenceAfter(),
		want:        Ownership{Owner: "a", Epoch: 3, Timing: Timing{Deadtime: fastTiming.Deadtime, Guard: time.Second}},
		wantReason:  webfarmv1.ReasonAwaitingFence,
		wantRequeue: 500 * time.Millisecond,
	}, {
		name:   "a status written before fencingTiming existed starts from the spec",
		status: Timing{}, spec: fastTiming, ownerGeneration: 0,
		silent:     fastTiming.fenceAfter(),
		want:       Ownership{Owner: "b", Epoch: 4, PreviousOwner: "a", Timing: fastTiming},
		wantReason: webfarmv1.ReasonOwned, wantRequeue: fastTiming.Deadtime,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Elect(timingInput(tt.status, tt.spec, tt.ownerGeneration, tt.silent))
			if got.Ownership != tt.want {
				t.Errorf("ownership = %+v, want %+v", got.Ownership, tt.want)
			}
			if got.Reason != tt.wantReason {
				t.Errorf("reason = %s, want %s", got.Reason, tt.wantReason)
			}
			if got.RequeueAfter != tt.wantRequeue {
				t.Errorf("requeueAfter = %v, want %v", got.RequeueAfter, tt.wantRequeue)
			}
		})
	}
}

// timingInput: a owns the address at epoch 3 and has been silent for
// silent; b is a fresh candidate; the spec is at generation 2.
func timingInput(status, spec Timing, ownerGeneration int64, silent time.Duration) ElectionInput {
	return ElectionInput{
		Key: "web/vip", Now: t0, Deadtime: spec.Deadtime, Guard: spec.Guard,
		Generation: 2, OwnerGeneration: ownerGeneration,
		Current: Ownership{Owner: "a", Epoch: 3, Timing: status},
		Fronts:  []ElectionFront{alive("a", silent), alive("b", 0)},
	}
}

// TestElectTimingSurvivesControllerRestart: the fencing timing lives in the
// status, so a controller that restarts after the spec was cut — and knows
// nothing but the status and the new spec — still waits for the old
// deadtime plus guard.
func TestElectTimingSurvivesControllerRestart(t *testing.T) {
	// Before the edit: the owner acts on generation 1, deadtime 10s.
	in := timingInput(Timing{}, slowTiming, 0, 0)
	in.Generation, in.OwnerGeneration = 1, 1
	res := Elect(in)
	st := failoverIPStatus(fipAt(webfarmv1.FailoverIPStatus{}, 1), res, nil, t0)

	// The spec is cut to 2s at generation 2 and the controller restarts:
	// all it has is the status it wrote.
	restarted := ownershipOf(st)
	if restarted.Timing != slowTiming {
		t.Fatalf("status carries fencing timing %+v, want %+v", restarted.Timing, slowTiming)
	}
	in = timingInput(restarted.Timing, fastTiming, 1, 3*time.Second)
	in.Current = restarted
	res = Elect(in)
	if res.Owner != "a" || res.Reason != webfarmv1.ReasonAwaitingFence || res.RequeueAfter != slowTiming.fenceAfter()-3*time.Second {
		t.Errorf("after a restart: owner %s, %s, requeue %v; want a kept, %s, requeue %v",
			res.Owner, res.Reason, res.RequeueAfter, webfarmv1.ReasonAwaitingFence, slowTiming.fenceAfter()-3*time.Second)
	}
	if got := ownershipOf(failoverIPStatus(fipAt(st, 2), res, nil, t0)).Timing; got != slowTiming {
		t.Errorf("status written after the cut carries %+v, want %+v until the owner reports generation 2", got, slowTiming)
	}
}
