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
	// container name -> the binary and the subcommand it runs
	for container, cmd := range map[string][]string{"controller": {"webfarm-controller"}, "agent": {"webfarm-agent"}, "haproxy": {"webfarm-agent", "haproxy"}, "sweep": {"webfarm-agent", "sweep"}} {
		bin := filepath.Join(t.TempDir(), cmd[0])
		if out, err := run("go", "build", "-o", bin, "./cmd/"+cmd[0]); err != nil {
			t.Fatalf("building %s: %v\n%s", cmd[0], err, out)
		}
		help, _ := exec.Command(bin, append(cmd[1:], "-h")...).CombinedOutput() // -h exits 0 or 2 by flag package rules
		flags[container] = string(help)
	}
	for _, values := range [][]string{nil, {"--values", customValues}} {
		for _, o := range mustHelmTemplate(t, values...) {
			if o.GetKind() != "Deployment" && o.GetKind() != "DaemonSet" && o.GetKind() != "Job" {
				continue
			}
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			for _, c := range containers {
				c := c.(map[string]any)
				help := flags[c["name"].(string)]
				args, _ := c["args"].([]any)
				if len(args) > 0 && args[0] == c["name"] {
					args = args[1:] // the subcommand the container is named after
				}
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
