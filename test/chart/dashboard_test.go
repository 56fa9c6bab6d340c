package chart

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/webfarm/webfarm/agent"
	"github.com/webfarm/webfarm/controllers"
)

var dashboardFile = filepath.Join(chartDir, "dashboards", "webfarm.json")

// dashboardPanel is what the test reads of a Grafana panel; a row holds
// its panels when collapsed.
type dashboardPanel struct {
	Title   string           `json:"title"`
	Type    string           `json:"type"`
	Panels  []dashboardPanel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// TestDashboardReadsServedMetrics: every panel of the chart's Grafana
// dashboard reads metrics that the binaries serve or that HAProxy's
// exporter exports, so that renaming a metric breaks this test rather than
// a panel; and the dashboard shows what the issue asks of it.
func TestDashboardReadsServedMetrics(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		Panels []dashboardPanel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dashboard); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	known := servedMetrics(t)
	used := map[string]bool{}
	var walk func([]dashboardPanel)
	walk = func(panels []dashboardPanel) {
		for _, p := range panels {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, q := range p.Targets {
				checkExpr(t, "panel "+p.Title, q.Expr, known, used)
			}
		}
	}
	walk(dashboard.Panels)
	for _, want := range []string{
		"webfarm_failoverip_owner", "webfarm_failoverip_epoch", "webfarm_failoverip_has_owner", "webfarm_failoverip_owner_changes_total",
		"webfarm_failover_takeover_wait_seconds", "webfarm_failover_transitions_total", "webfarm_failover_announcements_total", "webfarm_failover_fences_total",
		"webfarm_peer_datagrams_sent_total", "webfarm_peer_heartbeats_accepted_total", "webfarm_peer_datagrams_rejected_total",
		"haproxy_server_current_sessions", "haproxy_frontend_http_requests_total", "haproxy_frontend_http_responses_total", "haproxy_server_status",
		"webfarm_drain_chain_sync_duration_seconds", "webfarm_drain_chain_sync_failures_total",
		"webfarm_agent_api_request_duration_seconds", "webfarm_front_sessions", "webfarm_frontnodes",
	} {
		if !used[want] {
			t.Errorf("no panel shows %s", want)
		}
	}
}

// TestAlertRulesReadServedMetrics: every alert of the PrometheusRule reads
// metrics that the binaries serve.
func TestAlertRulesReadServedMetrics(t *testing.T) {
	rule := find(t, mustHelmTemplate(t, "--set", "metrics.prometheusRule.enabled=true"), "PrometheusRule", namespace, "webfarm-alerts")
	var spec struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	raw, err := yaml.Marshal(rule.Object["spec"])
	if err == nil {
		err = yaml.Unmarshal(raw, &spec)
	}
	if err != nil {
		t.Fatal(err)
	}
	known := servedMetrics(t)
	for _, g := range spec.Groups {
		for _, r := range g.Rules {
			checkExpr(t, "alert "+r.Alert, r.Expr, known, map[string]bool{})
		}
	}
}

// TestTemplateGrafanaDashboard: the ConfigMap carries the dashboard as it
// is in the chart, under the label Grafana's sidecar looks for.
func TestTemplateGrafanaDashboard(t *testing.T) {
	objs := mustHelmTemplate(t, "--values", customValues)
	cm := find(t, objs, "ConfigMap", namespace, "shopfarm-dashboard")
	if l := cm.GetLabels(); l["grafana_dashboard"] != "1" || l["release"] != "prometheus" {
		t.Errorf("dashboard ConfigMap labels %v: want grafana_dashboard=1 and the values' labels", l)
	}
	data, _, _ := unstructuredString(cm.Object, "data", "webfarm.json")
	want, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(data) != strings.TrimSpace(string(want)) {
		t.Error("the ConfigMap's webfarm.json differs from charts/webfarm/dashboards/webfarm.json")
	}
	for _, o := range mustHelmTemplate(t) {
		if o.GetKind() == "ConfigMap" {
			t.Errorf("the default values render ConfigMap %s: the dashboard is optional", o.GetName())
		}
	}
}

func unstructuredString(obj map[string]any, fields ...string) (string, bool, error) {
	var v any = obj
	for _, f := range fields {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false, nil
		}
		v = m[f]
	}
	s, ok := v.(string)
	return s, ok, nil
}

// servedMetrics are the names of the metrics the agent and the controller
// serve beside controller-runtime's, and those of HAProxy's exporter listed
// in testdata (checked against a real HAProxy by agent/haproxy's node test).
func servedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	for _, n := range append(agent.MetricNames(), controllers.MetricNames()...) {
		known[n] = true
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot, "test", "chart", "testdata", "haproxy-exporter-metrics.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			known[l] = true
		}
	}
	return known
}

// checkExpr fails t for each metric expr reads that is not known, and
// marks the metrics it reads in used (histograms by their base name).
func checkExpr(t *testing.T, where, expr string, known, used map[string]bool) {
	t.Helper()
	names := exprMetrics(expr)
	if len(names) == 0 {
		t.Errorf("%s reads no metric: %s", where, expr)
	}
	for _, n := range names {
		base := n
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if b, ok := strings.CutSuffix(n, suffix); ok && known[b] {
				base = b
			}
		}
		if !known[base] {
			t.Errorf("%s reads %s, which neither binary serves nor HAProxy's exporter exports (as listed): %s", where, n, expr)
		}
		used[base] = true
	}
}

var (
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers  = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promTokens    = regexp.MustCompile(`[0-9.]+[a-zA-Z]*|[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`)
	promOperators = []string{"and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"}
)

// exprMetrics returns the metric names a PromQL expression reads: the
// identifiers left once strings, label matchers, ranges and grouping
// labels are gone, other than functions, aggregations and keywords.
func exprMetrics(expr string) []string {
	expr = promStrings.ReplaceAllString(expr, `""`)
	expr = promMatchers.ReplaceAllString(expr, " ")
	expr = promGrouping.ReplaceAllString(expr, " ")
	var names []string
	for _, tok := range promTokens.FindAllString(expr, -1) {
		tok = strings.TrimSpace(tok)
		switch {
		case tok[0] >= '0' && tok[0] <= '9' || tok[0] == '.':
		case strings.HasSuffix(tok, "("): // a function or an aggregation
		case slices.Contains(promOperators, strings.ToLower(tok)):
		default:
			names = append(names, tok)
		}
	}
	return names
}

func TestExprMetrics(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`webfarm_haproxy_up`, []string{"webfarm_haproxy_up"}},
		{`histogram_quantile(0.99, sum by (le, method) (rate(webfarm_agent_api_request_duration_seconds_bucket[$__rate_interval])))`,
			[]string{"webfarm_agent_api_request_duration_seconds_bucket"}},
		{`sum by (instance) (rate(haproxy_frontend_http_responses_total{code="5xx",proxy=~"farm_.*"}[5m]))`, []string{"haproxy_frontend_http_responses_total"}},
		{`(webfarm_haproxy_farms > 0) and on (instance) (webfarm_haproxy_up == 0)`, []string{"webfarm_haproxy_farms", "webfarm_haproxy_up"}},
		{`max by (front) (webfarm_front_sessions) >= max by (front) (webfarm_front_sessions offset 15m)`, []string{"webfarm_front_sessions", "webfarm_front_sessions"}},
		{`1 - min without (pod) (up{job="x"})`, []string{"up"}},
		{`vector(1)`, nil},
	} {
		if got := exprMetrics(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("exprMetrics(%s) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}
