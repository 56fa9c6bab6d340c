package chart

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestAlertRules checks the PrometheusRule's rules with promtool (Debian's
// prometheus package) and runs the unit cases in testdata/alerts: each alert
// fires on the series it is for, and not on those beside them.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (hack/install-packages.sh installs Debian's prometheus)")
	}
	dir := t.TempDir()
	rules := writeAlertRules(t, dir)
	cases, err := os.ReadFile(filepath.Join(repoRoot, "test", "chart", "testdata", "alerts", "tests.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := filepath.Join(dir, "tests.yaml")
	if err := os.WriteFile(tests, cases, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(promtool, "check", "rules", rules); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if out, err := run(promtool, "test", "rules", tests); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// writeAlertRules writes the rules of the chart's PrometheusRule, as the
// Prometheus Operator hands them to Prometheus, to dir/rules.yaml.
func writeAlertRules(t *testing.T, dir string) string {
	t.Helper()
	objs := mustHelmTemplate(t, "--set", "metrics.prometheusRule.enabled=true")
	rule := find(t, objs, "PrometheusRule", namespace, "webfarm-alerts")
	spec, err := yaml.Marshal(rule.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, spec, 0o600); err != nil {
		t.Fatal(err)
	}
	return rules
}
