package sweep

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/webfarm/webfarm/internal/testenv"
)

// TestEnvtestSweep runs a sweep against a real API server, playing the
// kubelet: a front with an agent, an idle front, a node that only runs an
// agent (its label removed since), a node that is neither. No cleanup pod
// starts while a release pod is on its node; a succeeded one is deleted; the
// sweep ends when every front is clean.
func TestEnvtestSweep(t *testing.T) {
	env := testenv.Start(t)
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ns = "default"
	for name, l := range map[string]map[string]string{"front": {"webfarm.io/front": "true"}, "idle": {"webfarm.io/front": "true"}, "unlabelled": nil, "backend": nil} {
		if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	release := map[string]string{"app.kubernetes.io/instance": "webfarm", "app.kubernetes.io/component": "agent"}
	agentOn := func(node string) string {
		p, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "agent-", Labels: release},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "agent", Image: "agent"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p.Name
	}
	frontAgent, unlabelledAgent := agentOn("front"), agentOn("unlabelled")
	s := &Sweep{
		Client: cs, Namespace: ns, Poll: 50 * time.Millisecond,
		Fronts:   labels.SelectorFromSet(labels.Set{"webfarm.io/front": "true"}),
		Running:  labels.SelectorFromSet(release),
		Template: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "cleanup"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "cleanup", Image: "agent"}}}},
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(logr.NewContext(ctx, testr.New(t))) }()

	// The idle front's cleanup starts at once: the sweep has found the
	// nodes. The others wait for their agents.
	succeed(ctx, t, cs, ns, PodFor(s.Template, "idle").Name)
	for _, n := range []string{"front", "unlabelled"} {
		if _, err := cs.CoreV1().Pods(ns).Get(ctx, PodFor(s.Template, n).Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("%s's cleanup pod while its agent is still there: %v", n, err)
		}
	}
	if err := cs.CoreV1().Pods(ns).Delete(ctx, unlabelledAgent, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	unlabelled := succeed(ctx, t, cs, ns, PodFor(s.Template, "unlabelled").Name)
	if _, err := cs.CoreV1().Pods(ns).Get(ctx, PodFor(s.Template, "front").Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the front's cleanup pod while its agent is still there: %v", err)
	}
	if err := cs.CoreV1().Pods(ns).Delete(ctx, frontAgent, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	succeed(ctx, t, cs, ns, PodFor(s.Template, "front").Name)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 0 {
		t.Errorf("pods left: %d, %v", len(pods.Items), err)
	}
	if unlabelled.Spec.NodeName != "unlabelled" {
		t.Errorf("the cleanup pod of the unlabelled node is bound to %q", unlabelled.Spec.NodeName)
	}
	if _, err := cs.CoreV1().Pods(ns).Get(ctx, PodFor(s.Template, "backend").Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a node that is no front got a cleanup pod: %v", err)
	}
}

// succeed waits for the cleanup pod name, then reports it Succeeded as its
// kubelet would.
func succeed(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		pod = p
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("cleanup pod %s: %v", name, err)
	}
	pod.Status.Phase = corev1.PodSucceeded
	if pod, err = cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return pod
}
