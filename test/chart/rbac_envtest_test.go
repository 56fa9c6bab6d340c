package chart

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/testenv"
)

// nodeNameExtra is the user extra that a pod-bound ServiceAccount token
// carries: the name of the pod's node.
const nodeNameExtra = "authentication.kubernetes.io/node-name"

// policyDenial starts the message of a request that one of the own-node
// policy's validations refused (not an error evaluating it).
const policyDenial = "ValidatingAdmissionPolicy 'webfarm-agent-own-node' with binding 'webfarm-agent-own-node' denied request: the webfarm agent"

// impersonate returns a client that acts as the ServiceAccount sa of the
// release namespace, with a token bound to a pod on node (none when empty).
func impersonate(t *testing.T, cfg *rest.Config, sa, node string) client.Client {
	t.Helper()
	cfg = impersonatedConfig(cfg, sa)
	if node != "" {
		cfg.Impersonate.Extra = map[string][]string{nodeNameExtra: {node}}
	}
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// impersonatedConfig returns a copy of cfg that acts as the ServiceAccount
// sa of the release namespace.
func impersonatedConfig(cfg *rest.Config, sa string) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + namespace + ":" + sa,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
	return cfg
}

// outcome is what the API server must answer.
type outcome int

const (
	allowed        outcome = iota
	forbiddenRBAC          // refused by authorization
	deniedByPolicy         // authorized, refused by the own-node policy
)

func (o outcome) String() string {
	return [...]string{"allowed", "forbidden by RBAC", "denied by the own-node policy"}[o]
}

// judge tells which outcome err is.
func judge(err error) (outcome, bool) {
	switch {
	case err == nil:
		return allowed, true
	case strings.Contains(err.Error(), policyDenial):
		return deniedByPolicy, true
	case strings.Contains(err.Error(), "forbidden") && strings.Contains(err.Error(), "cannot"):
		return forbiddenRBAC, true
	}
	return 0, false
}

// installForRBAC installs the chart for real, with farms in namespace shop
// only, and the objects an agent reads or writes: FrontNodes front1 and
// front2, Secrets and ConfigMaps in a farm namespace (shop), in a namespace
// that holds no farm (blog) and in the release namespace.
func installForRBAC(t *testing.T, c client.Client) {
	t.Helper()
	ctx := context.Background()
	ensureNamespaces(t, c, namespace, "shop", "blog")
	if err := apply(ctx, c, mustHelmTemplate(t, "--set", "farmNamespaces={shop}")); err != nil {
		t.Fatalf("installing the chart: %v", err)
	}
	objs := []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "stats"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "blog", Name: "stats"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "not-for-agents"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "error-pages"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "blog", Name: "error-pages"}},
		frontNode("front1"), frontNode("front2"),
		lease("webfarm-node-front2", "front2"),
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); client.IgnoreAlreadyExists(err) != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	ownedFailoverIP(t, c, "owned", "front1")
	ownedFailoverIP(t, c, "others", "front2")
}

// ownedFailoverIP creates FailoverIP shop/name, owned by node at epoch 3.
func ownedFailoverIP(t *testing.T, c client.Client, name, node string) {
	t.Helper()
	ctx := context.Background()
	fip := &webfarmv1.FailoverIP{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Spec: webfarmv1.FailoverIPSpec{
			Address:   "192.0.2.10",
			Keepalive: metav1.Duration{Duration: 500 * time.Millisecond},
			Deadtime:  metav1.Duration{Duration: 2 * time.Second},
			Guard:     metav1.Duration{Duration: 500 * time.Millisecond},
		},
	}
	if err := c.Create(ctx, fip); apierrors.IsAlreadyExists(err) {
		err = c.Get(ctx, client.ObjectKeyFromObject(fip), fip)
		if err != nil {
			t.Fatalf("reading FailoverIP %s: %v", name, err)
		}
	} else if err != nil {
		t.Fatalf("creating FailoverIP %s: %v", name, err)
	}
	fip.Status = webfarmv1.FailoverIPStatus{Owner: node, Epoch: 3, Voters: []string{"front1", "front2"}}
	if err := c.Status().Update(ctx, fip); err != nil {
		t.Fatalf("writing the status of FailoverIP %s: %v", name, err)
	}
}

// witness writes node's witness of FailoverIP shop/name at epoch, as the
// agent does (agent/witness): a JSON patch of status.ownerWitness alone.
func witness(c client.Client, name, node string, epoch int64) func(context.Context) error {
	return func(ctx context.Context) error {
		patch := fmt.Sprintf(`[{"op":"add","path":"/status/ownerWitness","value":{"node":%q,"epoch":%d,"renewal":%q}}]`, node, epoch, time.Now().Format(time.RFC3339Nano))
		fip := &webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}}
		return c.Status().Patch(ctx, fip, client.RawPatch(types.JSONPatchType, []byte(patch)))
	}
}

func frontNode(node string) *webfarmv1.FrontNode {
	return &webfarmv1.FrontNode{
		ObjectMeta: metav1.ObjectMeta{Name: node},
		Spec:       webfarmv1.FrontNodeSpec{NodeName: node, Address: "192.0.2.1", Cookie: "c" + node},
	}
}

func lease(name, holder string) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder},
	}
}

// patchStatus writes the agent's part of a FrontNode's status, as the agent
// does: a merge patch of its own keys on the status subresource.
func patchStatus(ctx context.Context, c client.Client, node string) error {
	patch := client.RawPatch(types.MergePatchType, []byte(`{"status":{"shuttingDown":false}}`))
	return c.Status().Patch(ctx, &webfarmv1.FrontNode{ObjectMeta: metav1.ObjectMeta{Name: node}}, patch)
}

// waitForPolicy waits until the API server enforces the own-node policy,
// which it loads a moment after the policy is created.
func waitForPolicy(t *testing.T, agent client.Client) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, _ := judge(patchStatus(ctx, agent, "front2"))
		return got == deniedByPolicy, nil
	})
	if err != nil {
		t.Fatalf("the own-node policy never denied front1's agent a write to front2's status: %v", err)
	}
}

func TestEnvtestAgentPermissions(t *testing.T) {
	cfg, admin := controlPlane(t)
	installForRBAC(t, admin)
	agent := impersonate(t, cfg, "webfarm-agent", "front1")
	waitForPolicy(t, agent)
	unbound := impersonate(t, cfg, "webfarm-agent", "")

	get := func(obj client.Object, ns, name string) func(context.Context) error {
		return func(ctx context.Context) error {
			return agent.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj)
		}
	}
	list := func(l client.ObjectList, opts ...client.ListOption) func(context.Context) error {
		return func(ctx context.Context) error { return agent.List(ctx, l, opts...) }
	}
	for _, tc := range []struct {
		name string
		do   func(context.Context) error
		want outcome
	}{
		// What the agent needs.
		{"list WebFarms in every namespace", list(&webfarmv1.WebFarmList{}), allowed},
		{"list FrontNodes", list(&webfarmv1.FrontNodeList{}), allowed},
		{"list FailoverIPs in every namespace", list(&webfarmv1.FailoverIPList{}), allowed},
		{"patch its own FrontNode's status", func(ctx context.Context) error { return patchStatus(ctx, agent, "front1") }, allowed},
		{"create its own Lease", func(ctx context.Context) error { return agent.Create(ctx, lease("webfarm-node-front1", "front1")) }, allowed},
		{"renew its own Lease", func(ctx context.Context) error { return renew(ctx, agent, "webfarm-node-front1") }, allowed},
		{"read the peer key", get(&corev1.Secret{}, namespace, "webfarm-peer-key"), allowed},
		{"read a farm's stats Secret", get(&corev1.Secret{}, "shop", "stats"), allowed},
		{"read a farm's error pages", get(&corev1.ConfigMap{}, "shop", "error-pages"), allowed},
		// Another node's objects: RBAC allows, the policy denies.
		{"patch another node's FrontNode status", func(ctx context.Context) error { return patchStatus(ctx, agent, "front2") }, deniedByPolicy},
		{"create another node's Lease", func(ctx context.Context) error { return agent.Create(ctx, lease("webfarm-node-front3", "front3")) }, deniedByPolicy},
		{"renew another node's Lease", func(ctx context.Context) error { return renew(ctx, agent, "webfarm-node-front2") }, deniedByPolicy},
		{"create a Lease of another name", func(ctx context.Context) error { return agent.Create(ctx, lease("webfarm-controller", "front1")) }, deniedByPolicy},
		{"write with a token bound to no node", func(ctx context.Context) error { return patchStatus(ctx, unbound, "front1") }, deniedByPolicy},
		// A FailoverIP's status: only its owner's witness, by its owner.
		{"write its witness of a FailoverIP it owns", witness(agent, "owned", "front1", 3), allowed},
		{"write its witness at another epoch", witness(agent, "owned", "front1", 4), deniedByPolicy},
		{"write another node's witness", witness(agent, "owned", "front2", 3), deniedByPolicy},
		{"write its witness of a FailoverIP another node owns", witness(agent, "others", "front1", 3), deniedByPolicy},
		{"write a FailoverIP's owner", func(ctx context.Context) error {
			fip := &webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "owned"}}
			return agent.Status().Patch(ctx, fip, client.RawPatch(types.MergePatchType, []byte(`{"status":{"owner":"front2"}}`)))
		}, deniedByPolicy},
		// What the agent never needs.
		{"read a Secret of a namespace without farms", get(&corev1.Secret{}, "blog", "stats"), forbiddenRBAC},
		{"read a ConfigMap of a namespace without farms", get(&corev1.ConfigMap{}, "blog", "error-pages"), forbiddenRBAC},
		{"read another Secret of the release namespace", get(&corev1.Secret{}, namespace, "not-for-agents"), forbiddenRBAC},
		{"list a farm namespace's Secrets", list(&corev1.SecretList{}, client.InNamespace("shop")), forbiddenRBAC},
		{"list Secrets in every namespace", list(&corev1.SecretList{}), forbiddenRBAC},
		{"list Nodes", list(&corev1.NodeList{}), forbiddenRBAC},
		{"change its FrontNode's spec", func(ctx context.Context) error {
			return agent.Patch(ctx, frontNode("front1"), client.RawPatch(types.MergePatchType, []byte(`{"spec":{"drainRequested":true}}`)))
		}, forbiddenRBAC},
		{"delete its FrontNode", func(ctx context.Context) error { return agent.Delete(ctx, frontNode("front1")) }, forbiddenRBAC},
		{"create a Lease in a farm namespace", func(ctx context.Context) error {
			l := lease("webfarm-node-front1", "front1")
			l.Namespace = "shop"
			return agent.Create(ctx, l)
		}, forbiddenRBAC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do(context.Background())
			got, known := judge(err)
			if !known || got != tc.want {
				t.Errorf("got %v (%v), want %v", got, err, tc.want)
			}
		})
	}

	t.Run("record events", func(t *testing.T) {
		for _, ns := range []string{"shop", "default"} {
			for _, verb := range []string{"create", "patch"} {
				if !can(t, agent, authorizationv1.ResourceAttributes{Verb: verb, Group: "events.k8s.io", Resource: "events", Namespace: ns}) {
					t.Errorf("the agent cannot %s events in %s", verb, ns)
				}
			}
		}
	})

	t.Run("watch what it caches", func(t *testing.T) {
		for _, r := range []string{"webfarms", "frontnodes", "failoverips"} {
			if !can(t, agent, authorizationv1.ResourceAttributes{Verb: "watch", Group: "webfarm.io", Resource: r}) {
				t.Errorf("the agent cannot watch %s", r)
			}
		}
	})
}

// renew updates a Lease's renewTime, as the agent's heartbeat does.
func renew(ctx context.Context, c client.Client, name string) error {
	var l coordinationv1.Lease
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &l); err != nil {
		return err
	}
	now := metav1.NewMicroTime(time.Now())
	l.Spec.RenewTime = &now
	return c.Update(ctx, &l)
}

// can asks the API server whether c's user may do what attrs say.
func can(t *testing.T, c client.Client, attrs authorizationv1.ResourceAttributes) bool {
	t.Helper()
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attrs}}
	if err := c.Create(context.Background(), review); err != nil {
		t.Fatalf("asking whether %+v is allowed: %v", attrs, err)
	}
	return review.Status.Allowed
}

func TestEnvtestControllerPermissions(t *testing.T) {
	cfg, admin := controlPlane(t)
	installForRBAC(t, admin)
	controller := impersonate(t, cfg, "webfarm-controller", "")
	for _, tc := range []struct {
		attrs authorizationv1.ResourceAttributes
		want  bool
	}{
		{authorizationv1.ResourceAttributes{Verb: "watch", Resource: "nodes"}, true},
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "events.k8s.io", Resource: "events", Namespace: "default"}, true},
		{authorizationv1.ResourceAttributes{Verb: "watch", Group: "webfarm.io", Resource: "webfarms"}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "webfarm.io", Resource: "webfarms", Subresource: "status", Namespace: "shop"}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "webfarm.io", Resource: "failoverips", Subresource: "status", Namespace: "shop"}, true},
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "webfarm.io", Resource: "frontnodes"}, true},
		{authorizationv1.ResourceAttributes{Verb: "delete", Group: "webfarm.io", Resource: "frontnodes"}, true},
		{authorizationv1.ResourceAttributes{Verb: "patch", Group: "webfarm.io", Resource: "frontnodes", Subresource: "status"}, true},
		{authorizationv1.ResourceAttributes{Verb: "watch", Group: "coordination.k8s.io", Resource: "leases", Namespace: namespace}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: namespace}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "webfarm.io", Resource: "sites", Subresource: "status", Namespace: "shop"}, true},
		// A Site's certificate, in a farm namespace only, read and watched
		// (the controller caches the Secrets' metadata alone).
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "shop"}, true},
		{authorizationv1.ResourceAttributes{Verb: "watch", Resource: "secrets", Namespace: "shop"}, true},
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "blog"}, false},
		{authorizationv1.ResourceAttributes{Verb: "list", Resource: "secrets", Namespace: "blog"}, false},
		{authorizationv1.ResourceAttributes{Verb: "list", Resource: "secrets"}, false},
		// Never needed.
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: namespace}, false},
		{authorizationv1.ResourceAttributes{Verb: "patch", Resource: "nodes"}, false},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "webfarm.io", Resource: "webfarms", Namespace: "shop"}, false},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: "shop"}, false},
	} {
		a := tc.attrs
		if got := can(t, controller, a); got != tc.want {
			t.Errorf("controller may %s %s/%s %s in %q: %v, want %v", a.Verb, a.Group, a.Resource, a.Subresource, a.Namespace, got, tc.want)
		}
	}
}
