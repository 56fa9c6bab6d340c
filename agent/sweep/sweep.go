// Package sweep runs the agent's node cleanup on every front of a release
// being uninstalled: it finds the fronts when it runs, not when the chart
// was last rendered, waits on each until the release's own pods there
// (agent, HAProxy) are gone, then runs one cleanup pod per node and waits
// for all of them.
package sweep

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// DefaultPoll is how often Run looks at nodes and pods.
const DefaultPoll = time.Second

// Sweep is one uninstall's cleanup.
type Sweep struct {
	Client    kubernetes.Interface
	Namespace string
	// Fronts selects the nodes to clean: the agent's nodeSelector.
	Fronts labels.Selector
	// Running selects the release's pods that run on the fronts (agent
	// and HAProxy). Their nodes are cleaned too, whatever their labels
	// now, and no node is cleaned while one of them is still there.
	Running labels.Selector
	// Template is the cleanup pod; each node's copy gets a name of its
	// own and the node's name.
	Template corev1.Pod
	// Poll defaults to DefaultPoll.
	Poll time.Duration
}

// Run cleans every front and returns once each cleanup pod has succeeded
// (and was deleted) or ctx ends. A failed pod is left for inspection.
func (s *Sweep) Run(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx)
	nodes, err := s.nodes(ctx)
	if err != nil {
		return err
	}
	log.Info("Cleaning the fronts", "nodes", nodes)
	poll := s.Poll
	if poll == 0 {
		poll = DefaultPoll
	}
	states := make(map[string]*nodeState, len(nodes))
	for _, n := range nodes {
		states[n] = &nodeState{}
	}
	err = wait.PollUntilContextCancel(ctx, poll, true, func(ctx context.Context) (bool, error) {
		over := 0
		for _, n := range nodes {
			if err := s.step(ctx, n, states[n]); err != nil {
				return false, err
			}
			if states[n].done || states[n].failed {
				over++
			}
		}
		return over == len(nodes), nil
	})
	var failed, waiting []string
	for _, n := range nodes {
		switch st := states[n]; {
		case st.failed:
			failed = append(failed, n)
		case !st.done:
			waiting = append(waiting, n)
		}
	}
	if len(waiting) > 0 {
		err = fmt.Errorf("fronts not cleaned: %v: %w", waiting, err)
	}
	if len(failed) > 0 {
		err = errors.Join(err, fmt.Errorf("cleanup failed on %v: their pods are left in %s", failed, s.Namespace))
	}
	return err
}

// nodeState is where one node's cleanup is.
type nodeState struct {
	pod          string // its cleanup pod, once created
	done, failed bool
}

// step moves one node on: create its cleanup pod once the release's pods
// are gone from it, then delete that pod once it succeeded.
func (s *Sweep) step(ctx context.Context, node string, st *nodeState) error {
	switch {
	case st.done || st.failed:
		return nil
	case st.pod == "":
		busy, err := s.running(ctx, node)
		if err != nil || busy {
			return err
		}
		st.pod, err = s.create(ctx, node)
		return err
	}
	p, err := s.Client.CoreV1().Pods(s.Namespace).Get(ctx, st.pod, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading cleanup pod %s: %w", st.pod, err)
	}
	switch p.Status.Phase {
	case corev1.PodSucceeded:
		st.done = true
		logr.FromContextOrDiscard(ctx).Info("Front cleaned", "node", node)
		// Its container has ended: nothing is left to wait for.
		return s.Client.CoreV1().Pods(s.Namespace).Delete(ctx, st.pod, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
	case corev1.PodFailed:
		st.failed = true
	}
	return nil
}

// nodes are the fronts by label and the nodes the release's pods are on.
func (s *Sweep) nodes(ctx context.Context) ([]string, error) {
	fronts, err := s.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: s.Fronts.String()})
	if err != nil {
		return nil, fmt.Errorf("listing the fronts: %w", err)
	}
	pods, err := s.Client.CoreV1().Pods(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: s.Running.String()})
	if err != nil {
		return nil, fmt.Errorf("listing the release's pods: %w", err)
	}
	return nodesToClean(fronts.Items, pods.Items), nil
}

// nodesToClean is the sorted union of the fronts' names and the nodes the
// pods are bound to.
func nodesToClean(fronts []corev1.Node, pods []corev1.Pod) []string {
	var names []string
	for _, n := range fronts {
		names = append(names, n.Name)
	}
	for _, p := range pods {
		if p.Spec.NodeName != "" {
			names = append(names, p.Spec.NodeName)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// running reports whether a pod of the release is still on node.
func (s *Sweep) running(ctx context.Context, node string) (bool, error) {
	pods, err := s.Client.CoreV1().Pods(s.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: s.Running.String(), FieldSelector: "spec.nodeName=" + node,
	})
	if err != nil {
		return false, fmt.Errorf("listing the release's pods on %s: %w", node, err)
	}
	return len(pods.Items) > 0, nil
}

// create starts node's cleanup pod, or finds the one a previous run of the
// sweep started.
func (s *Sweep) create(ctx context.Context, node string) (string, error) {
	pod := PodFor(s.Template, node)
	_, err := s.Client.CoreV1().Pods(s.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("creating the cleanup pod of %s: %w", node, err)
	}
	return pod.Name, nil
}

// PodFor is template's copy for node: bound to it, and named after the
// template and a hash of the node's name (node names may be longer than a
// pod name allows).
func PodFor(template corev1.Pod, node string) *corev1.Pod {
	pod := template.DeepCopy()
	sum := sha256.Sum256([]byte(node))
	pod.Name = fmt.Sprintf("%s-%s", template.Name, hex.EncodeToString(sum[:])[:10])
	pod.Namespace = ""
	pod.Spec.NodeName = node
	return pod
}
