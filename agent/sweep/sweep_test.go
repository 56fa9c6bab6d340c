package sweep

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNodesToClean(t *testing.T) {
	node := func(name string) corev1.Node { return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}} }
	pod := func(node string) corev1.Pod { return corev1.Pod{Spec: corev1.PodSpec{NodeName: node}} }
	for _, tc := range []struct {
		name   string
		fronts []corev1.Node
		pods   []corev1.Pod
		want   []string
	}{
		{name: "none"},
		{name: "the fronts by label", fronts: []corev1.Node{node("b"), node("a")}, want: []string{"a", "b"}},
		{name: "a node unlabelled since keeps its pods' cleanup", fronts: []corev1.Node{node("a")},
			pods: []corev1.Pod{pod("a"), pod("c")}, want: []string{"a", "c"}},
		{name: "an unscheduled pod names no node", pods: []corev1.Pod{pod("")}},
		{name: "agent and HAProxy on one node: once", fronts: []corev1.Node{node("a")},
			pods: []corev1.Pod{pod("a"), pod("a")}, want: []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nodesToClean(tc.fronts, tc.pods); !slices.Equal(got, tc.want) {
				t.Errorf("nodesToClean = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPodFor(t *testing.T) {
	template := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "webfarm-agent-cleanup", Namespace: "elsewhere"}}
	long := "a-node-name-that-is-as-long-as-a-dns-subdomain-may-be-and-longer-than-any-pod-name-prefix-allows.example.com"
	a, b := PodFor(template, long), PodFor(template, "wfc-node1")
	if a.Spec.NodeName != long || b.Spec.NodeName != "wfc-node1" {
		t.Errorf("nodes %q and %q", a.Spec.NodeName, b.Spec.NodeName)
	}
	if a.Name == b.Name || len(a.Name) != len("webfarm-agent-cleanup-")+10 {
		t.Errorf("names %q and %q: want the template's and 10 hex digits, one per node", a.Name, b.Name)
	}
	if a.Namespace != "" || template.Spec.NodeName != "" {
		t.Error("the copy keeps the template's namespace, or the template changed")
	}
}
