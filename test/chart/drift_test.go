package chart

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestCRDsMatchConfig: the chart installs exactly the CRDs that
// `make manifests` generates into config/crd/bases.
func TestCRDsMatchConfig(t *testing.T) {
	generated := readDir(t, filepath.Join(repoRoot, "config", "crd", "bases"))
	chart := readDir(t, filepath.Join(chartDir, "crds"))
	if len(generated) == 0 {
		t.Fatal("config/crd/bases holds no CRD")
	}
	for name, want := range generated {
		got, ok := chart[name]
		switch {
		case !ok:
			t.Errorf("charts/webfarm/crds/%s is missing: cp config/crd/bases/*.yaml charts/webfarm/crds/", name)
		case !bytes.Equal(got, want):
			t.Errorf("charts/webfarm/crds/%s differs from config/crd/bases/%s: cp config/crd/bases/*.yaml charts/webfarm/crds/", name, name)
		}
	}
	for name := range chart {
		if _, ok := generated[name]; !ok {
			t.Errorf("charts/webfarm/crds/%s has no counterpart in config/crd/bases: remove it", name)
		}
	}
}

func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = data
	}
	return files
}

// TestControllerRBACMatchesGenerated: the chart grants the controller what
// controller-gen derives from its +kubebuilder:rbac markers
// (config/rbac/role.yaml), no more and no less, with the same scope.
func TestControllerRBACMatchesGenerated(t *testing.T) {
	path := filepath.Join(repoRoot, "config", "rbac", "role.yaml")
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		t.Skip("config/rbac/role.yaml not generated yet (make manifests)")
	}
	if err != nil {
		t.Fatal(err)
	}
	generated, err := decodeObjects(string(data))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	chart := mustHelmTemplate(t)
	for _, g := range generated {
		c := find(t, chart, g.GetKind(), g.GetNamespace(), g.GetName())
		if diff := permissionDiff(rulesOf(t, c), rulesOf(t, g)); diff != "" {
			t.Errorf("%s %s: the chart's rules differ from config/rbac/role.yaml (make manifests regenerates it from the markers in controllers/):\n%s",
				g.GetKind(), g.GetName(), diff)
		}
	}
}

// TestEnvtestKustomizeMatchesChart: config/default installs what the chart installs
// with its default values: the same objects, the same permissions, the same
// admission policy and the same pods. (Named Envtest for the kubectl that
// comes with the control plane; it needs no API server.)
func TestEnvtestKustomizeMatchesChart(t *testing.T) {
	kustomize := kustomizeBuild(t)
	chart := mustHelmTemplate(t)

	// The kustomize config also creates the namespace and the CRDs (Helm
	// takes both from the command line and crds/) and a Job that generates
	// the peer key (Helm generates it itself).
	onlyKustomize := map[string]bool{"Namespace": true, "CustomResourceDefinition": true, "Job": true}
	var kept []*unstructured.Unstructured
	for _, o := range kustomize {
		if onlyKustomize[o.GetKind()] || strings.HasPrefix(o.GetName(), "webfarm-peer-key") {
			continue
		}
		// kustomize's built-in schema does not know that admission policies
		// are cluster-scoped and gives them the namespace, which the API
		// server drops.
		if strings.HasPrefix(o.GetKind(), "ValidatingAdmissionPolicy") {
			o.SetNamespace("")
		}
		kept = append(kept, o)
	}
	var chartKept []*unstructured.Unstructured
	for _, o := range chart {
		// The peer key is the Job's in kustomize; the uninstall's hooks
		// have no kustomize counterpart.
		if o.GetKind() != "Secret" && o.GetAnnotations()["helm.sh/hook"] == "" {
			chartKept = append(chartKept, o)
		}
	}
	k, c := ids(kept), ids(chartKept)
	slices.Sort(k)
	slices.Sort(c)
	if !slices.Equal(k, c) {
		t.Fatalf("config/default installs\n  %s\nthe chart\n  %s", strings.Join(k, "\n  "), strings.Join(c, "\n  "))
	}

	for _, co := range chartKept {
		ko := find(t, kept, co.GetKind(), co.GetNamespace(), co.GetName())
		switch co.GetKind() {
		case "ClusterRole", "Role":
			if diff := permissionDiff(rulesOf(t, ko), rulesOf(t, co)); diff != "" {
				t.Errorf("%s %s: config/default and the chart differ:\n%s", co.GetKind(), co.GetName(), diff)
			}
		case "ClusterRoleBinding", "RoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "PodDisruptionBudget":
			sameFields(t, ko, co, []string{"roleRef"}, []string{"subjects"}, []string{"spec"})
		case "Deployment", "DaemonSet":
			sameFields(t, ko, co,
				[]string{"spec", "replicas"}, []string{"spec", "updateStrategy"},
				[]string{"spec", "template", "spec", "hostNetwork"}, []string{"spec", "template", "spec", "dnsPolicy"},
				[]string{"spec", "template", "spec", "terminationGracePeriodSeconds"}, []string{"spec", "template", "spec", "securityContext"},
				[]string{"spec", "template", "spec", "nodeSelector"}, []string{"spec", "template", "spec", "volumes"},
				[]string{"spec", "template", "spec", "serviceAccountName"})
			sameContainer(t, ko, co)
		}
	}
}

// sameFields reports the fields that differ between the kustomize and the
// chart version of one object. Labels differ by design and are not compared.
func sameFields(t *testing.T, k, c *unstructured.Unstructured, paths ...[]string) {
	t.Helper()
	for _, p := range paths {
		kv, _, _ := unstructured.NestedFieldNoCopy(k.Object, p...)
		cv, _, _ := unstructured.NestedFieldNoCopy(c.Object, p...)
		if p[0] == "spec" && len(p) == 1 {
			kv, cv = withoutSelectorLabels(kv), withoutSelectorLabels(cv)
		}
		if fmt.Sprint(kv) != fmt.Sprint(cv) {
			t.Errorf("%s %s, %s: config/default has\n  %v\nthe chart\n  %v", c.GetKind(), c.GetName(), strings.Join(p, "."), kv, cv)
		}
	}
}

// withoutSelectorLabels drops a spec's label selector, whose labels differ
// by design (Helm adds the release's).
func withoutSelectorLabels(spec any) any {
	m, ok := spec.(map[string]any)
	if !ok {
		return spec
	}
	out := map[string]any{}
	for k, v := range m {
		if k != "selector" {
			out[k] = v
		}
	}
	return out
}

// sameContainer compares the first container of two pod templates, image
// pull policy aside (Kubernetes defaults it the same way).
func sameContainer(t *testing.T, k, c *unstructured.Unstructured) {
	t.Helper()
	kc, _, _ := unstructured.NestedSlice(k.Object, "spec", "template", "spec", "containers")
	cc, _, _ := unstructured.NestedSlice(c.Object, "spec", "template", "spec", "containers")
	km, cm := kc[0].(map[string]any), cc[0].(map[string]any)
	for _, field := range []string{"name", "image", "args", "env", "ports", "livenessProbe", "readinessProbe", "lifecycle", "resources", "securityContext", "volumeMounts"} {
		if fmt.Sprint(km[field]) != fmt.Sprint(cm[field]) {
			t.Errorf("%s %s, container %s: config/default has\n  %v\nthe chart\n  %v", c.GetKind(), c.GetName(), field, km[field], cm[field])
		}
	}
}

// rulesOf returns the rules of a rendered Role or ClusterRole.
func rulesOf(t *testing.T, obj *unstructured.Unstructured) []rbacv1.PolicyRule {
	t.Helper()
	switch obj.GetKind() {
	case "Role":
		return convert[rbacv1.Role](t, obj).Rules
	case "ClusterRole":
		return convert[rbacv1.ClusterRole](t, obj).Rules
	}
	t.Fatalf("%s %s is not a Role or ClusterRole", obj.GetKind(), obj.GetName())
	return nil
}

// permissions expands rules into single permissions — "verb group/resource
// [name]" — so that two rule sets compare however they group their rules.
func permissions(rules []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rules {
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					for _, n := range names {
						out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s/%s %s", v, g, res, n)))
					}
				}
			}
		}
		for _, u := range r.NonResourceURLs {
			for _, v := range r.Verbs {
				out = append(out, v+" "+u)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// permissionDiff says which permissions got grants beyond want and which it
// lacks; empty when they are the same.
func permissionDiff(got, want []rbacv1.PolicyRule) string {
	g, w := permissions(got), permissions(want)
	var b strings.Builder
	for _, p := range g {
		if !slices.Contains(w, p) {
			fmt.Fprintf(&b, "  + %s\n", p)
		}
	}
	for _, p := range w {
		if !slices.Contains(g, p) {
			fmt.Fprintf(&b, "  - %s\n", p)
		}
	}
	return b.String()
}
