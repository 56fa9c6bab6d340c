package chart

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/webfarm/webfarm/internal/testenv"
)

// TestEnvtestPeerKeyJob runs the script of config/peer-key's Job as the Job
// would — with a token of the Job's ServiceAccount, its RBAC installed —
// against a real API server: it creates the agents' key once and then keeps
// it.
func TestEnvtestPeerKeyJob(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed (make packages)")
	}
	cfg, admin := controlPlane(t)
	ctx := context.Background()
	const ns = "peer-key-test" // apart from the chart tests' own peer key
	ensureNamespaces(t, admin, ns)

	out, err := run(kubectlBinary(t), "kustomize", filepath.Join(repoRoot, "config", "peer-key"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeObjects(out)
	if err != nil {
		t.Fatal(err)
	}
	var job *batchv1.Job
	var rbac []*unstructured.Unstructured
	for _, o := range objs {
		o.SetNamespace(ns)
		if o.GetKind() == "Job" {
			job = convert[batchv1.Job](t, o)
			continue
		}
		if o.GetKind() == "RoleBinding" {
			subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
			subjects[0].(map[string]any)["namespace"] = ns
			_ = unstructured.SetNestedSlice(o.Object, subjects, "subjects")
		}
		rbac = append(rbac, o)
	}
	if job == nil {
		t.Fatal("config/peer-key renders no Job")
	}
	if err := apply(ctx, admin, rbac); err != nil {
		t.Fatalf("installing the Job's ServiceAccount and Role: %v", err)
	}
	saDir := serviceAccountDir(t, cfg, admin, ns, job.Spec.Template.Spec.ServiceAccountName)
	script := job.Spec.Template.Spec.Containers[0].Args[0]
	api := strings.TrimSuffix(cfg.Host, "/") // as https://kubernetes.default.svc

	first := runScript(t, script, saDir, api)
	if !strings.Contains(first, "created Secret "+ns+"/webfarm-peer-key") {
		t.Fatalf("first run said %q, want that it created the Secret", first)
	}
	var created corev1.Secret
	if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "webfarm-peer-key"}, &created); err != nil {
		t.Fatal(err)
	}
	if n := len(created.Data["authkey"]); n != 48 {
		t.Fatalf("authkey has %d bytes, want 48 random ones", n)
	}

	second := runScript(t, script, saDir, api)
	var kept corev1.Secret
	if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "webfarm-peer-key"}, &kept); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(second, "exists: kept") || string(kept.Data["authkey"]) != string(created.Data["authkey"]) {
		t.Fatalf("second run said %q and the key changed: %v", second, string(kept.Data["authkey"]) != string(created.Data["authkey"]))
	}

	jobUser := impersonateUser(t, cfg, "system:serviceaccount:"+ns+":"+job.Spec.Template.Spec.ServiceAccountName)
	if can(t, jobUser, authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: ns, Name: "webfarm-peer-key"}) {
		t.Error("the Job's ServiceAccount can read the key it created; it needs only create")
	}
}

// serviceAccountDir writes what the kubelet mounts in a pod of sa — a token,
// the cluster's CA and the namespace — into a temporary directory.
func serviceAccountDir(t *testing.T, cfg *rest.Config, admin client.Client, ns, sa string) string {
	t.Helper()
	req := &authenticationv1.TokenRequest{}
	account := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}}
	if err := admin.SubResource("token").Create(context.Background(), account, req); err != nil {
		t.Fatalf("requesting a token of ServiceAccount %s/%s: %v", ns, sa, err)
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{"token": []byte(req.Status.Token), "ca.crt": cfg.CAData, "namespace": []byte(ns)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runScript runs the Job's script as its container does (sh -ec).
func runScript(t *testing.T, script, saDir, api string) string {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-ec", script)
	cmd.Env = append(os.Environ(), "SERVICE_ACCOUNT_DIR="+saDir, "KUBERNETES_API="+api, "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the peer-key script failed: %v\n%s", err, out)
	}
	return string(out)
}

// impersonateUser returns a client acting as user, an authenticated one.
func impersonateUser(t *testing.T, cfg *rest.Config, user string) client.Client {
	t.Helper()
	cfg = rest.CopyConfig(cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
