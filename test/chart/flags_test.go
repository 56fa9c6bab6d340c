package chart

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestChartFlagsKnownByBinaries: every flag that the chart passes to the
// controller and the agent, in a container's arguments or in the command of
// its probes and hooks, is one the binaries define, so that no pod dies at
// start on "flag provided but not defined" and no hook fails on one.
func TestChartFlagsKnownByBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both binaries")
	}
	bins := map[string]string{}
	for _, name := range []string{"webfarm-controller", "webfarm-agent"} {
		bins[name] = filepath.Join(t.TempDir(), name)
		if out, err := run("go", "build", "-o", bins[name], "./cmd/"+name); err != nil {
			t.Fatalf("building %s: %v\n%s", name, err, out)
		}
	}
	helps := map[string]string{} // "binary subcommand" -> its -h
	help := func(cmd []string) string {
		key := strings.Join(cmd, " ")
		if _, ok := helps[key]; !ok {
			out, _ := exec.Command(bins[cmd[0]], append(cmd[1:], "-h")...).CombinedOutput() // -h exits 0 or 2 by flag package rules
			helps[key] = string(out)
		}
		return helps[key]
	}
	// container name -> the binary and the subcommand it runs
	runs := map[string][]string{"controller": {"webfarm-controller"}, "agent": {"webfarm-agent"}, "haproxy": {"webfarm-agent", "haproxy"}, "sweep": {"webfarm-agent", "sweep"}}
	for _, values := range [][]string{nil, {"--values", customValues}} {
		for _, o := range mustHelmTemplate(t, values...) {
			if o.GetKind() != "Deployment" && o.GetKind() != "DaemonSet" && o.GetKind() != "Job" {
				continue
			}
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			for _, c := range containers {
				c := c.(map[string]any)
				name := c["name"].(string)
				args, _ := c["args"].([]any)
				if len(args) > 0 && args[0] == name {
					args = args[1:] // the subcommand the container is named after
				}
				where := fmt.Sprintf("%s %s, container %s", o.GetKind(), o.GetName(), name)
				checkFlags(t, where, help(runs[name]), args)
				for _, path := range [][]string{{"readinessProbe"}, {"livenessProbe"}, {"lifecycle", "preStop"}} {
					cmd, _, _ := unstructured.NestedStringSlice(c, append(path, "exec", "command")...)
					if len(cmd) < 2 || bins[cmd[0]] == "" {
						continue
					}
					flags := make([]any, 0, len(cmd)-2)
					for _, a := range cmd[2:] {
						flags = append(flags, a)
					}
					checkFlags(t, where+" "+strings.Join(path, "."), help(cmd[:2]), flags)
				}
			}
		}
	}
}

// checkFlags reports every flag of args that help, a binary's -h, does not
// define.
func checkFlags(t *testing.T, where, help string, args []any) {
	t.Helper()
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimPrefix(a.(string), "--"), "=")
		if !strings.Contains(help, "\n  -"+name+" ") && !strings.Contains(help, "\n  -"+name+"\n") {
			t.Errorf("%s passes %s, which its command does not define", where, a)
		}
	}
}
