package chart

import (
	"path/filepath"
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestTemplateHAProxyOnTheFronts: with haproxy.nodeSelector, the database
// servers of a standalone FailoverIP get the agent but no HAProxy, whose
// preStop hook would hand their address off at every new HAProxy image;
// without it, HAProxy runs wherever the agent does. HAProxy keeps the
// agent's tolerations, affinity and priority either way.
func TestTemplateHAProxyOnTheFronts(t *testing.T) {
	front := labels.Set{"webfarm.io/front": "true", "webfarm.io/agent": "true"}
	database := labels.Set{"webfarm.io/database": "true", "webfarm.io/agent": "true"}
	placement := []string{"--set-json", `agent.tolerations=[{"key":"example.com/dedicated","operator":"Exists"}]`,
		"--set", "agent.priorityClassName=system-node-critical"}
	for _, tc := range []struct {
		name            string
		values          []string
		agentOn, haOn   []labels.Set
		agentOff, haOff []labels.Set
	}{
		{name: "default: HAProxy wherever the agent runs",
			agentOn: []labels.Set{front}, haOn: []labels.Set{front},
			agentOff: []labels.Set{database}, haOff: []labels.Set{database}},
		{name: "database servers: the agent on both, HAProxy on the fronts",
			values:  []string{"--values", filepath.Join(repoRoot, "test", "chart", "testdata", "values-database.yaml")},
			agentOn: []labels.Set{front, database}, haOn: []labels.Set{front},
			haOff: []labels.Set{database}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := mustHelmTemplate(t, append(tc.values, placement...)...)
			agent := convert[appsv1.DaemonSet](t, find(t, objs, "DaemonSet", namespace, "webfarm-agent")).Spec.Template.Spec
			haproxy := convert[appsv1.DaemonSet](t, find(t, objs, "DaemonSet", namespace, "webfarm-haproxy")).Spec.Template.Spec
			checkRunsOn(t, "agent", agent, tc.agentOn, tc.agentOff)
			checkRunsOn(t, "HAProxy", haproxy, tc.haOn, tc.haOff)
			if !reflect.DeepEqual(haproxy.Tolerations, agent.Tolerations) || !reflect.DeepEqual(haproxy.Affinity, agent.Affinity) ||
				haproxy.PriorityClassName != agent.PriorityClassName || len(agent.Tolerations) != 1 {
				t.Errorf("HAProxy: tolerations %v, affinity %v, priority %q; want the agent's: %v, %v, %q",
					haproxy.Tolerations, haproxy.Affinity, haproxy.PriorityClassName, agent.Tolerations, agent.Affinity, agent.PriorityClassName)
			}
		})
	}
}

// checkRunsOn fails t unless pod's nodeSelector selects every node of on
// and none of off.
func checkRunsOn(t *testing.T, what string, pod corev1.PodSpec, on, off []labels.Set) {
	t.Helper()
	sel := labels.SelectorFromSet(pod.NodeSelector)
	for _, node := range on {
		if !sel.Matches(node) {
			t.Errorf("%s (nodeSelector %v) does not run on a node labelled %v", what, pod.NodeSelector, node)
		}
	}
	for _, node := range off {
		if sel.Matches(node) {
			t.Errorf("%s (nodeSelector %v) runs on a node labelled %v", what, pod.NodeSelector, node)
		}
	}
}
