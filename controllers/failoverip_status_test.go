package controllers

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

func TestFailoverIPStatus(t *testing.T) {
	cur := webfarmv1.FailoverIPStatus{Owner: "a", Epoch: 3, Transitions: 3}
	holding := &webfarmv1.NodeFailoverIPStatus{Name: "web/vip", Epoch: 3, State: webfarmv1.VIPHolding}
	kept := failoverIPStatus(fipAt(cur, 2), ElectionResult{Ownership: owned("a", 3), Candidates: []string{"a", "b"}, Reason: webfarmv1.ReasonOwned}, holding, t0)
	if kept.Transitions != 3 || kept.LastTransitionTime != nil || kept.ObservedGeneration != 2 {
		t.Errorf("owner kept: %+v, want no new transition, observedGeneration 2", kept)
	}
	if c := meta.FindStatusCondition(kept.Conditions, webfarmv1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("owner kept: Ready %+v, want True", c)
	}
	again := failoverIPStatus(fipAt(kept, 2), ElectionResult{Ownership: owned("a", 3), Candidates: []string{"a", "b"}, Reason: webfarmv1.ReasonOwned}, holding, t0.Add(time.Minute))
	if !failoverIPStatusEqual(again, kept) {
		t.Errorf("the same election a minute later changes the status: %+v vs %+v", again, kept)
	}
	moved := failoverIPStatus(fipAt(kept, 2), ElectionResult{Ownership: Ownership{Owner: "b", Epoch: 4, PreviousOwner: "a"}, Reason: webfarmv1.ReasonOwned, OwnerChanged: true}, nil, t0)
	if moved.Transitions != 4 || moved.LastTransitionTime == nil || moved.Owner != "b" || moved.Epoch != 4 || moved.PreviousOwner != "a" {
		t.Errorf("owner changed: %+v, want b at epoch 4, 4 transitions and their time", moved)
	}
	for _, reason := range []string{webfarmv1.ReasonAwaitingFence, webfarmv1.ReasonNoCandidate} {
		st := failoverIPStatus(fipAt(cur, 1), ElectionResult{Ownership: owned("a", 3), Reason: reason}, nil, t0)
		if c := meta.FindStatusCondition(st.Conditions, webfarmv1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse || c.Reason != reason || c.Message == "" {
			t.Errorf("%s: Ready %+v, want False with that reason and a message", reason, c)
		}
	}
}

// fipAt is a FailoverIP with status st at generation, and an empty spec.
func fipAt(st webfarmv1.FailoverIPStatus, generation int64) *webfarmv1.FailoverIP {
	return &webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Generation: generation}, Status: st}
}

// TestFailoverIPStatusPublishesTiming: the agents act on the timing the
// status carries, so every write carries the spec's with its generation,
// and a fencing timing that covers it, raised in that same write.
func TestFailoverIPStatusPublishesTiming(t *testing.T) {
	fip := fipAt(webfarmv1.FailoverIPStatus{}, 5)
	fip.Spec.Keepalive, fip.Spec.Deadtime, fip.Spec.Guard = metav1.Duration{Duration: time.Second}, metav1.Duration{Duration: 10 * time.Second}, metav1.Duration{Duration: time.Second}
	tests := []struct {
		name    string
		fencing Timing
		want    Timing
	}{
		{"the election kept a longer fencing timing", Timing{Deadtime: 20 * time.Second, Guard: 3 * time.Second}, Timing{Deadtime: 20 * time.Second, Guard: 3 * time.Second}},
		{"the spec raised: fencing covers it at once", Timing{Deadtime: 2 * time.Second, Guard: 500 * time.Millisecond}, Timing{Deadtime: 10 * time.Second, Guard: time.Second}},
		{"raised field by field", Timing{Deadtime: 20 * time.Second, Guard: 500 * time.Millisecond}, Timing{Deadtime: 20 * time.Second, Guard: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := failoverIPStatus(fip, ElectionResult{Ownership: Ownership{Owner: "a", Epoch: 3, Timing: tt.fencing}, Reason: webfarmv1.ReasonOwned}, nil, t0)
			want := webfarmv1.AgentTiming{Keepalive: fip.Spec.Keepalive, Deadtime: fip.Spec.Deadtime, Guard: fip.Spec.Guard, Generation: 5}
			if st.Timing == nil || *st.Timing != want {
				t.Errorf("timing = %+v, want %+v", st.Timing, want)
			}
			if got := timingOf(st.FencingTiming); got != tt.want {
				t.Errorf("fencingTiming = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadyConditionFollowsTheOwnersAgent(t *testing.T) {
	res := ElectionResult{Ownership: owned("a", 3), Reason: webfarmv1.ReasonOwned}
	tests := []struct {
		name   string
		report *webfarmv1.NodeFailoverIPStatus
		status metav1.ConditionStatus
		reason string
	}{
		{"holding", &webfarmv1.NodeFailoverIPStatus{State: webfarmv1.VIPHolding}, metav1.ConditionTrue, webfarmv1.ReasonOwned},
		{"waiting for the previous owner", &webfarmv1.NodeFailoverIPStatus{State: webfarmv1.VIPWaiting, Message: "previous owner heard 1s ago"}, metav1.ConditionFalse, webfarmv1.ReasonOwnerNotAnnounced},
		{"fenced", &webfarmv1.NodeFailoverIPStatus{State: webfarmv1.VIPFenced}, metav1.ConditionFalse, webfarmv1.ReasonOwnerNotAnnounced},
		{"no report yet", nil, metav1.ConditionFalse, webfarmv1.ReasonOwnerNotAnnounced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := readyCondition(res, tt.report)
			if c.Status != tt.status || c.Reason != tt.reason || c.Message == "" {
				t.Errorf("Ready = %+v, want %s/%s with a message", c, tt.status, tt.reason)
			}
		})
	}
}

func TestElectionEvents(t *testing.T) {
	withReason := func(st webfarmv1.FailoverIPStatus, reason string) webfarmv1.FailoverIPStatus {
		st.Conditions = []metav1.Condition{{Type: webfarmv1.ConditionReady, Reason: reason}}
		return st
	}
	ownedBy := func(owner string, epoch int64) webfarmv1.FailoverIPStatus {
		return webfarmv1.FailoverIPStatus{Owner: owner, Epoch: epoch}
	}
	tests := []struct {
		name     string
		old, cur webfarmv1.FailoverIPStatus
		res      ElectionResult
		want     []string
	}{
		{"steady state: none", withReason(ownedBy("a", 3), webfarmv1.ReasonOwned), ownedBy("a", 3), ElectionResult{Reason: webfarmv1.ReasonOwned}, nil},
		{"new owner", ownedBy("a", 3), ownedBy("b", 4), ElectionResult{Reason: webfarmv1.ReasonOwned, OwnerChanged: true}, []string{EventOwnerChanged}},
		{"release requested", ownedBy("a", 3), webfarmv1.FailoverIPStatus{Owner: "a", Epoch: 3, ReleaseRequested: true}, ElectionResult{Reason: webfarmv1.ReasonAwaitingRelease}, []string{EventReleaseRequested}},
		{"owner silent", withReason(ownedBy("a", 3), webfarmv1.ReasonOwned), ownedBy("a", 3), ElectionResult{Reason: webfarmv1.ReasonAwaitingFence}, []string{EventAwaitingFence}},
		{"still silent: once only", withReason(ownedBy("a", 3), webfarmv1.ReasonAwaitingFence), ownedBy("a", 3), ElectionResult{Reason: webfarmv1.ReasonAwaitingFence}, nil},
		{"owner fenced, nobody left", withReason(ownedBy("a", 3), webfarmv1.ReasonAwaitingFence), ownedBy("", 4), ElectionResult{Reason: webfarmv1.ReasonNoCandidate, OwnerChanged: true}, []string{EventNoCandidate}},
		{"no candidate from the start", webfarmv1.FailoverIPStatus{}, webfarmv1.FailoverIPStatus{}, ElectionResult{Reason: webfarmv1.ReasonNoCandidate}, []string{EventNoCandidate}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range electionEvents(tt.old, tt.cur, tt.res) {
				got = append(got, e.reason)
				wantType := corev1.EventTypeNormal
				if e.reason == EventAwaitingFence || e.reason == EventNoCandidate {
					wantType = corev1.EventTypeWarning
				}
				if e.kind != wantType || e.note == "" {
					t.Errorf("event %s: type %s, note %q; want %s with a note", e.reason, e.kind, e.note, wantType)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("events = %v, want %v", got, tt.want)
			}
		})
	}
}
