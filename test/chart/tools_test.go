// Package chart tests the install: the Helm chart charts/webfarm and the
// kustomize config config/default — rendered, validated, checked against each
// other and the generated manifests, and (tests named Envtest…) accepted by a
// real kube-apiserver, whose RBAC and admission then hold the agent to its
// own node.
package chart

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/webfarm/webfarm/internal/testenv"
)

// Names of the default install, the same for the chart and config/default.
const (
	release   = "webfarm"
	namespace = "webfarm-system"
)

var (
	repoRoot = testenv.RepoRoot()
	chartDir = filepath.Join(repoRoot, "charts", "webfarm")
)

// helmBinary returns $HELM, else bin/helm as hack/helm.sh links it; it skips t
// when there is neither.
func helmBinary(t testing.TB) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	h := filepath.Join(repoRoot, "bin", "helm")
	if _, err := os.Stat(h); err != nil {
		t.Skipf("helm not found: set $HELM or run hack/helm.sh (%v)", err)
	}
	return h
}

// kubectlBinary returns the kubectl that hack/control-plane.sh builds beside
// kube-apiserver ($KUBEBUILDER_ASSETS); it skips t when there is none.
func kubectlBinary(t testing.TB) string {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Skip("kubectl not found: set KUBEBUILDER_ASSETS=$(hack/control-plane.sh)")
	}
	return filepath.Join(assets, "kubectl")
}

// run runs a command and returns its standard output, or an error carrying
// its standard error.
func run(name string, args ...string) (string, error) {
	return runEnv(nil, name, args...)
}

// runEnv is run with more environment variables.
func runEnv(env []string, name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// helmTemplate renders the chart as `helm install webfarm charts/webfarm -n
// webfarm-system` would, with extra arguments (values files, --set).
func helmTemplate(t testing.TB, extra ...string) ([]*unstructured.Unstructured, error) {
	t.Helper()
	args := append([]string{"template", release, chartDir, "--namespace", namespace}, extra...)
	out, err := run(helmBinary(t), args...)
	if err != nil {
		return nil, err
	}
	return decodeObjects(out)
}

// mustHelmTemplate is helmTemplate for values that must render.
func mustHelmTemplate(t testing.TB, extra ...string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := helmTemplate(t, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// kustomizeBuild renders config/default as `kubectl apply -k` would.
func kustomizeBuild(t testing.TB) []*unstructured.Unstructured {
	t.Helper()
	kubectl := kubectlBinary(t)
	// config/default takes the controller's generated roles from config/rbac,
	// which `make manifests` fills with role.yaml only.
	rbac := filepath.Join(repoRoot, "config", "rbac", "kustomization.yaml")
	if _, err := os.Stat(rbac); err != nil {
		t.Skipf("config/default cannot build yet: config/rbac/kustomization.yaml (resources: [role.yaml]) is missing (%v)", err)
	}
	out, err := run(kubectl, "kustomize", filepath.Join(repoRoot, "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeObjects(out)
	if err != nil {
		t.Fatalf("decoding the output of kubectl kustomize config/default: %v", err)
	}
	return objs
}

// decodeObjects splits a multi-document YAML stream into objects, skipping
// empty documents.
func decodeObjects(manifests string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("document %d: %w", len(objs)+1, err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// find returns the object of that kind and name, or fails t.
func find(t testing.TB, objs []*unstructured.Unstructured, kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetNamespace() == ns && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s/%s among the %d rendered objects", kind, ns, name, len(objs))
	return nil
}

// ids names objects as "Kind namespace/name", for messages and set checks.
func ids(objs []*unstructured.Unstructured) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, fmt.Sprintf("%s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName()))
	}
	return out
}
