package chart

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// TestEnvtestHelmInstall installs, upgrades and uninstalls the chart with
// helm itself: the peer key generated at install survives the upgrade (the
// chart looks it up), NOTES tell how to create a farm and drain a node, and
// nothing cluster-wide is left behind.
func TestEnvtestHelmInstall(t *testing.T) {
	_, admin := controlPlane(t)
	const rel, ns = "farm2", "helm-test" // apart from the other tests' objects
	helm := helmCommand(t)
	ctx := context.Background()

	out := helm(t, "install", rel, chartDir, "--namespace", ns, "--create-namespace")
	for _, want := range []string{"kind: WebFarm", "kind: FailoverIP", "kubectl annotate node front1 webfarm.io/drain=true", "webfarm.io/drain-"} {
		if !strings.Contains(out, want) {
			t.Errorf("helm install's notes lack %q:\n%s", want, out)
		}
	}
	checkNotesExample(t, admin, out, ns)
	key := func() string {
		var s corev1.Secret
		if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: rel + "-webfarm-peer-key"}, &s); err != nil {
			t.Fatalf("reading the peer key: %v", err)
		}
		return string(s.Data["authkey"])
	}
	installed := key()

	// The upgrade also turns on the nginx vhosts and the Secret watch, so
	// that the API server checks the DaemonSet and Role they render.
	helm(t, "upgrade", rel, chartDir, "--namespace", ns, "--set", "agent.logLevel=debug",
		"--set", "agent.nginx.enabled=true", "--set", "agent.watchSecrets=true")
	if upgraded := key(); upgraded != installed || len(upgraded) != 48 {
		t.Errorf("the upgrade changed the agents' shared key (%d bytes then, %d now, equal %v)", len(installed), len(upgraded), upgraded == installed)
	}

	// No kubelet runs the post-delete cleanup Job here (test/cluster runs
	// it on real nodes): without --no-hooks the uninstall would wait for it.
	helm(t, "uninstall", rel, "--namespace", ns, "--wait", "--no-hooks")
	for _, name := range []string{rel + "-webfarm-agent", rel + "-webfarm-controller"} {
		err := admin.Get(ctx, client.ObjectKey{Name: name}, &rbacv1.ClusterRole{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("ClusterRole %s after uninstall: %v, want it gone", name, err)
		}
	}
}

// helmCommand returns a runner of helm against the test's control plane, as
// a cluster admin, with helm's own files in a temporary directory.
func helmCommand(t *testing.T) func(t *testing.T, args ...string) string {
	t.Helper()
	user, err := shared.env.AddUser(envtest.User{Name: "helm-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	path := filepath.Join(home, "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"KUBECONFIG=" + path,
		"HELM_CACHE_HOME=" + filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME=" + filepath.Join(home, "config"),
		"HELM_DATA_HOME=" + filepath.Join(home, "data")}
	bin := helmBinary(t)
	return func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := runEnv(env, bin, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// checkNotesExample has the API server accept (dry run) the WebFarm and
// FailoverIP that the notes tell the user to apply.
func checkNotesExample(t *testing.T, c client.Client, notes, ns string) {
	t.Helper()
	_, rest, found := strings.Cut(notes, "<<'YAML'\n")
	example, _, closed := strings.Cut(rest, "\n     YAML")
	if !found || !closed {
		t.Fatalf("the notes hold no example between <<'YAML' and YAML:\n%s", notes)
	}
	// The notes indent the example by five spaces.
	var lines []string
	for _, l := range strings.Split(example, "\n") {
		lines = append(lines, strings.TrimPrefix(l, "     "))
	}
	objs, err := decodeObjects(strings.Join(lines, "\n"))
	if err != nil || len(objs) != 2 {
		t.Fatalf("the notes' example: %d objects, %v; want a FailoverIP and a WebFarm", len(objs), err)
	}
	for _, o := range objs {
		o.SetNamespace(ns)
	}
	if err := apply(context.Background(), c, objs, client.DryRunAll); err != nil {
		t.Errorf("the API server refused the notes' example: %v", err)
	}
}
