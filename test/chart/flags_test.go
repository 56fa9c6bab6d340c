package chart

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestChartFlagsKnownByBinaries: every flag that the chart passes to the
// controller and the agent is one the binaries define, so that no pod dies
// at start on "flag provided but not defined".
func TestChartFlagsKnownByBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both binaries")
	}
	flags := map[string]string{} // container name -> the binary's -h
	for container, pkg := range map[string]string{"controller": "webfarm-controller", "agent": "webfarm-agent"} {
		bin := filepath.Join(t.TempDir(), pkg)
		if out, err := run("go", "build", "-o", bin, "./cmd/"+pkg); err != nil {
			t.Fatalf("building %s: %v\n%s", pkg, err, out)
		}
		help, _ := exec.Command(bin, "-h").CombinedOutput() // -h exits 0 or 2 by flag package rules
		flags[container] = string(help)
	}
	for _, values := range [][]string{nil, {"--values", customValues}} {
		for _, o := range mustHelmTemplate(t, values...) {
			if o.GetKind() != "Deployment" && o.GetKind() != "DaemonSet" {
				continue
			}
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			for _, c := range containers {
				c := c.(map[string]any)
				help := flags[c["name"].(string)]
				args, _ := c["args"].([]any)
				for _, a := range args {
					name, _, _ := strings.Cut(strings.TrimPrefix(a.(string), "--"), "=")
					if !strings.Contains(help, "\n  -"+name+" ") && !strings.Contains(help, "\n  -"+name+"\n") {
						t.Errorf("%s %s passes %s, which %s does not define", o.GetKind(), o.GetName(), a, c["name"])
					}
				}
			}
		}
	}
}
