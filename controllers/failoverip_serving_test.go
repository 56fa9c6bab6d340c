package controllers

import (
	"testing"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

func notServingFront(f ElectionFront) ElectionFront { f.NotServing = true; return f }

// TestElectServing: the address follows a serving front (DESIGN.md safety
// rule 3).
func TestElectServing(t *testing.T) {
	runElectCases(t, []electCase{{
		name:          "owner stops serving: asked to release at once, the serving front named",
		current:       owned("a", 3),
		fronts:        []ElectionFront{notServingFront(alive("a", 0)), alive("b", 0), notServingFront(alive("c", 0))},
		want:          Ownership{Owner: "a", Epoch: 3, ReleaseRequested: true},
		wantReason:    webfarmv1.ReasonAwaitingRelease,
		wantSuccessor: "b",
		wantCands:     []string{"b"},
		wantRequeue:   testDeadtime,
	}, {
		name:        "owner that stopped serving released: the serving front owns it at once",
		current:     Ownership{Owner: "a", Epoch: 3, ReleaseRequested: true},
		fronts:      []ElectionFront{released(notServingFront(alive("a", 0)), 3), alive("b", 0)},
		want:        Ownership{Owner: "b", Epoch: 4, PreviousOwner: "a", PreviousOwnerReleased: true},
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"b"},
		wantRequeue: testDeadtime,
	}, {
		name:        "a front that does not serve is no candidate, even the preferred one",
		current:     Ownership{},
		preferred:   "a",
		fronts:      []ElectionFront{notServingFront(alive("a", 0)), alive("b", 0)},
		want:        Ownership{Owner: "b", Epoch: 1, PreviousOwnerReleased: true},
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"b"},
		wantRequeue: testDeadtime,
	}, {
		name:         "autoFailback waits until the preferred node serves",
		current:      owned("b", 4),
		preferred:    "a",
		autoFailback: true,
		fronts:       []ElectionFront{notServingFront(alive("a", 0)), alive("b", 0)},
		want:         owned("b", 4),
		wantReason:   webfarmv1.ReasonOwned,
		wantCands:    []string{"b"},
		wantRequeue:  testDeadtime,
	}, {
		name:        "nobody serves: the owner keeps the address rather than moving it to another front that does not serve",
		current:     owned("a", 3),
		fronts:      []ElectionFront{notServingFront(alive("a", 0)), notServingFront(alive("b", 0))},
		want:        owned("a", 3),
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"a", "b"},
		wantRequeue: testDeadtime,
	}, {
		name:         "nobody serves: autoFailback does not move the address to a preferred node that does not serve either",
		current:      owned("b", 3),
		preferred:    "a",
		autoFailback: true,
		fronts:       []ElectionFront{notServingFront(alive("a", 0)), notServingFront(alive("b", 0))},
		want:         owned("b", 3),
		wantReason:   webfarmv1.ReasonOwned,
		wantCands:    []string{"a", "b"},
		wantRequeue:  testDeadtime,
	}, {
		name:        "nobody serves and a release was requested: the request is withdrawn",
		current:     Ownership{Owner: "a", Epoch: 3, ReleaseRequested: true},
		fronts:      []ElectionFront{notServingFront(alive("a", 0)), notServingFront(alive("b", 0))},
		want:        owned("a", 3),
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"a", "b"},
		wantRequeue: testDeadtime,
	}, {
		name:        "nobody serves and nobody owns: a front still takes the address",
		current:     Ownership{Epoch: 4},
		fronts:      []ElectionFront{notServingFront(alive("a", 0)), notServingFront(alive("b", 0))},
		want:        Ownership{Owner: best(ElectionInput{Key: "web/vip"}, []string{"a", "b"}), Epoch: 5, PreviousOwnerReleased: true},
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"a", "b"},
		wantRequeue: testDeadtime,
	}, {
		name:        "not serving does not bring back a draining front",
		current:     owned("a", 3),
		fronts:      []ElectionFront{notServingFront(alive("a", 0)), draining(alive("b", 0))},
		want:        owned("a", 3),
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"a"},
		wantRequeue: testDeadtime,
	}, {
		name:        "a silent front does not serve whatever it last reported: it stays fenced out",
		current:     owned("a", 3),
		fronts:      []ElectionFront{alive("a", testDeadtime+testGuard), notServingFront(alive("b", 0))},
		want:        Ownership{Owner: "b", Epoch: 4, PreviousOwner: "a"},
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"b"},
		wantRequeue: testDeadtime,
	}})
}

func TestNotServing(t *testing.T) {
	fip := &webfarmv1.FailoverIP{}
	fip.Namespace, fip.Name = "web", "vip"
	tests := []struct {
		name    string
		serving []webfarmv1.ServingStatus
		want    bool
	}{
		{"no report (an older agent) serves", nil, false},
		{"a report on another FailoverIP only", []webfarmv1.ServingStatus{{Name: "web/other", Serving: false}}, false},
		{"reported serving", []webfarmv1.ServingStatus{{Name: "web/vip", Serving: true}}, false},
		{"reported not serving", []webfarmv1.ServingStatus{{Name: "web/other", Serving: true}, {Name: "web/vip", Serving: false}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			front := &webfarmv1.FrontNode{Status: webfarmv1.FrontNodeStatus{Serving: tt.serving}}
			if got := notServing(front, fip); got != tt.want {
				t.Errorf("notServing = %v, want %v", got, tt.want)
			}
		})
	}
}
