package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// TestDrainWarningsOncePerProblem: an invalid drain annotation is reported
// once per value, again after it was fixed and broken anew, and a Node
// without address does not make it repeat.
func TestDrainWarningsOncePerProblem(t *testing.T) {
	rec := events.NewFakeRecorder(16)
	r := &FrontNodeReconciler{shared: &shared{events: rec}}
	node := func(drain string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "front1", Annotations: map[string]string{webfarmv1.DrainAnnotation: drain}}}
	}
	steps := []struct {
		drain      string
		noAddress  bool
		wantEvents int
		wantDrain  bool
	}{
		{"yes", false, 1, false},
		{"yes", false, 0, false},
		{"yes", true, 1, false}, // the missing address, once
		{"yes", true, 0, false},
		{"oui", true, 1, false}, // a new invalid value
		{"true", true, 0, true},
		{"yes", true, 1, false}, // broken anew
	}
	for i, s := range steps {
		n := node(s.drain)
		if got := r.drainRequested(n); got != s.wantDrain {
			t.Errorf("step %d (%q): drainRequested = %v, want %v", i, s.drain, got, s.wantDrain)
		}
		if s.noAddress {
			r.warnOnce(n, EventNoNodeAddress, "", "Node %s has no IP address", n.Name)
		}
		if got := len(rec.Events); got != s.wantEvents {
			t.Errorf("step %d (%q, no address %v): %d events, want %d", i, s.drain, s.noAddress, got, s.wantEvents)
		}
		for len(rec.Events) > 0 {
			<-rec.Events
		}
	}
}
