package chart

import (
	"context"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/webfarm/webfarm/internal/testenv"
)

// TestEnvtestAgentPodToken: the own-node policy works with the token a real
// agent pod gets, not only with impersonation — the API server puts the pod's
// node into the token it binds to the pod.
func TestEnvtestAgentPodToken(t *testing.T) {
	cfg, admin := controlPlane(t)
	installForRBAC(t, admin)
	ctx := context.Background()

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "front1"}}
	if err := admin.Create(ctx, node); client.IgnoreAlreadyExists(err) != nil {
		t.Fatalf("creating Node front1: %v", err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "webfarm-agent-front1"},
		Spec: corev1.PodSpec{
			NodeName:           "front1",
			ServiceAccountName: "webfarm-agent",
			Containers:         []corev1.Container{{Name: "agent", Image: "ghcr.io/webfarm/webfarm-agent:test"}},
		},
	}
	if err := admin.Create(ctx, pod); err != nil {
		t.Fatalf("creating the agent pod: %v", err)
	}
	t.Cleanup(func() { _ = admin.Delete(context.Background(), pod) })

	agent := podClient(t, cfg, admin, pod)
	waitForPolicy(t, agent)
	if err := patchStatus(ctx, agent, "front1"); err != nil {
		t.Errorf("the agent pod on front1 could not patch FrontNode front1's status: %v", err)
	}
	if got, _ := judge(patchStatus(ctx, agent, "front2")); got != deniedByPolicy {
		t.Errorf("the agent pod on front1 patching FrontNode front2's status: %v, want %v", got, deniedByPolicy)
	}
}

// podClient returns a client that authenticates with a token of pod's
// ServiceAccount bound to pod, as the kubelet mounts it.
func podClient(t *testing.T, cfg *rest.Config, admin client.Client, pod *corev1.Pod) client.Client {
	t.Helper()
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Spec.ServiceAccountName}}
	if err := admin.SubResource("token").Create(context.Background(), sa, req); err != nil {
		t.Fatalf("requesting a token bound to pod %s: %v", pod.Name, err)
	}
	podCfg := &rest.Config{
		Host:            cfg.Host,
		BearerToken:     req.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: cfg.CAData},
	}
	c, err := client.New(podCfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
