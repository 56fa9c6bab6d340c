package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/webfarm/webfarm/internal/promtest"
	"github.com/webfarm/webfarm/internal/testenv"
)

// farmProxy is the sample farm's backend in HAProxy's figures, and
// vipFrontend the frontend of its failover address and port.
const (
	farmProxy   = `proxy="farm_default_webfarm"`
	vipFrontend = `proxy="http_10.99.0.10_80"`
)

// TestE2EObservability scrapes the controller, every agent and every
// HAProxy's exporter of a running farm, checks the figures against what
// the test did, reads the access log in the owner's agent log, and counts
// one owner change and one take-over after a hard loss.
func TestE2EObservability(t *testing.T) {
	tb, owner := startServing(t)
	ctx := context.Background()
	const requests = 20
	for i := range requests {
		if _, err := Get(ctx, tb.Client(), VIPURL(fmt.Sprintf("/observed-%d", i))); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("access log of the owner's HAProxy in its agent's log", func(t *testing.T) {
		checkAgentAccessLog(t, tb.Front(owner), requests)
	})
	t.Run("agents and exporters", func(t *testing.T) {
		for _, f := range tb.Fronts() {
			checkAgentFigures(t, ctx, f, f.Name == owner)
		}
		m := mustScrape(t, func() (Metrics, error) { return tb.Front(owner).HAProxyMetrics(ctx) })
		if v, _ := m.Get("haproxy_frontend_http_requests_total", vipFrontend); v < requests {
			t.Errorf("the owner's exporter counts %v requests to the farm, want at least %d", v, requests)
		}
	})
	t.Run("live figures, as make demo prints them", func(t *testing.T) {
		var out strings.Builder
		if err := WriteLiveFigures(ctx, &out, tb); err != nil {
			t.Fatal(err)
		}
		t.Logf("\n%s", out.String())
		if !strings.Contains(out.String(), "owned by "+owner) || strings.Contains(out.String(), "not scraped") {
			t.Errorf("the live figures do not name the owner %s or miss an agent:\n%s", owner, out.String())
		}
	})
	t.Run("no scrape without credentials", func(t *testing.T) {
		checkScrapeNeedsCredentials(t, ctx, tb, tb.Front(owner), requests)
	})
	changes := func() float64 {
		m := mustScrape(t, func() (Metrics, error) { return tb.ControllerMetrics(ctx) })
		v, _ := m.Get("webfarm_failoverip_owner_changes_total", `failoverip="`+FailoverIPName+`"`)
		return v
	}
	t.Run("controller", func(t *testing.T) {
		m := mustScrape(t, func() (Metrics, error) { return tb.ControllerMetrics(ctx) })
		if v, ok := m.Get("webfarm_failoverip_owner", `node="`+owner+`"`); !ok || v != 1 {
			t.Errorf("webfarm_failoverip_owner for %s = %v (present %v), want 1", owner, v, ok)
		}
		if v, _ := m.Get("webfarm_frontnodes", `phase="Active"`); int(v) != len(tb.Fronts()) {
			t.Errorf("webfarm_frontnodes Active = %v, want %d", v, len(tb.Fronts()))
		}
	})

	prom := startFarmPrometheus(t, tb)
	before := changes()
	crashed := time.Now()
	if err := tb.Front(owner).Crash(); err != nil {
		t.Fatal(err)
	}
	var next string
	if err := tb.WaitFor(func() (bool, error) {
		var err error
		next, err = tb.Owner(ctx)
		return err == nil && next != "" && next != owner, nil
	}, time.Minute); err != nil {
		t.Fatalf("no new owner after %s crashed: %v", owner, err)
	}
	t.Run("one owner change and one take-over after a hard loss", func(t *testing.T) {
		if err := tb.WaitFor(func() (bool, error) {
			m, err := tb.Front(next).AgentMetrics(ctx)
			n, _ := m.Get("webfarm_failover_takeover_wait_seconds_count")
			return err == nil && n >= 1, nil
		}, 30*time.Second); err != nil {
			t.Fatalf("the new owner %s never observed its take-over: %v", next, err)
		}
		m := mustScrape(t, func() (Metrics, error) { return tb.Front(next).AgentMetrics(ctx) })
		wait, _ := m.Get("webfarm_failover_takeover_wait_seconds_sum")
		t.Logf("%s crashed; %s named owner and announced %v after the crash; its own wait %.3fs",
			owner, next, time.Since(crashed).Round(time.Millisecond), wait)
		if got := changes() - before; got != 1 {
			t.Errorf("owner changes after a hard loss: %v, want 1", got)
		}
	})
	t.Run("a real Prometheus fires WebfarmFrontDown for the lost owner", func(t *testing.T) {
		if prom == "" {
			t.Skip("no Prometheus (see above)")
		}
		promtest.WaitFor(t, 2*time.Minute, "WebfarmFrontDown firing for "+owner, func() (bool, error) {
			firing, err := promtest.Firing(prom, "WebfarmFrontDown")
			return slices.ContainsFunc(firing, func(a promtest.Alert) bool { return a.Labels["front"] == owner }), err
		})
		t.Logf("WebfarmFrontDown{front=%q} firing %v after the crash (frontDownFor 0s, scrape and evaluation every 1s)",
			owner, time.Since(crashed).Round(time.Millisecond))
	})
	t.Run("the new owner's TookOver event", func(t *testing.T) {
		var notes string
		err := tb.WaitFor(func() (bool, error) {
			var err error
			notes, err = tb.Kubectl("get", "events", "-n", SamplesNamespace,
				"--field-selector", "reason=TookOver,involvedObject.name="+FailoverIPName, "-o", "jsonpath={.items[*].message}")
			return err == nil && strings.Contains(notes, "on "+next), err
		}, 30*time.Second)
		if err != nil {
			t.Fatalf("no TookOver event of %s on FailoverIP %s: %v; events: %q", next, FailoverIPName, err, notes)
		}
	})
}

// checkAgentAccessLog finds one httplog line per request in the agent's
// log, and none for the checks of /check.txt.
func checkAgentAccessLog(t *testing.T, f *Front, requests int) {
	// The web servers have no such pages: 404s, logged like any request.
	path := regexp.MustCompile(`http_10\.99\.0\.10_80 farm_default_webfarm/front\d+(-backup)? [-\d/]+ \d{3} .*"GET (/observed-\d+|/check\.txt) HTTP/1\.1"`)
	var seen map[string]int
	err := WaitFor(func() (bool, error) {
		log, err := os.ReadFile(f.Agent().LogPath())
		if err != nil {
			return false, err
		}
		seen = map[string]int{}
		for _, m := range path.FindAllStringSubmatch(string(log), -1) {
			seen[m[2]]++
		}
		return len(seen) >= requests, nil
	}, 10*time.Second)
	if err != nil {
		t.Fatalf("access-log lines in %s: %v; seen %v", f.Agent().LogPath(), err, seen)
	}
	for i := range requests {
		if n := seen[fmt.Sprintf("/observed-%d", i)]; n != 1 {
			t.Errorf("/observed-%d logged %d times, want once", i, n)
		}
	}
	if seen["/check.txt"] != 0 {
		t.Errorf("/check.txt logged %d times", seen["/check.txt"])
	}
}

// checkAgentFigures checks an agent's own figures on a farm that runs.
func checkAgentFigures(t *testing.T, ctx context.Context, f *Front, owner bool) {
	m := mustScrape(t, func() (Metrics, error) { return f.AgentMetrics(ctx) })
	want := map[string]func(float64) bool{
		"webfarm_haproxy_up":                     func(v float64) bool { return v == 1 },
		"webfarm_haproxy_farms":                  func(v float64) bool { return v == 1 },
		"webfarm_haproxy_reloads_total":          func(v float64) bool { return v >= 1 },
		"webfarm_peer_heartbeats_accepted_total": func(v float64) bool { return v > 0 },
		"webfarm_peer_datagrams_sent_total":      func(v float64) bool { return v > 0 },
	}
	if owner {
		want["webfarm_failover_announcements_total"] = func(v float64) bool { return v >= 1 }
	}
	for name, ok := range want {
		if v, found := m.Get(name); !found || !ok(v) {
			t.Errorf("%s: %s = %v (present %v)", f.Name, name, v, found)
		}
	}
	for _, reason := range []string{"bad_mac", "bad_signature", "version"} {
		if v, _ := m.Get("webfarm_peer_datagrams_rejected_total", `reason="`+reason+`"`); v != 0 {
			t.Errorf("%s rejected %v peer datagrams (%s)", f.Name, v, reason)
		}
	}
	// Every front acks its peers' heartbeats: each times round trips.
	if n, _ := m.Get("webfarm_peer_round_trip_seconds_count"); n > 0 {
		sum, _ := m.Get("webfarm_peer_round_trip_seconds_sum")
		t.Logf("%s: %v peer round trips, mean %v", f.Name, n, time.Duration(sum/n*float64(time.Second)))
	} else {
		t.Errorf("%s timed no peer round trip", f.Name)
	}
	if _, found := m.Get("webfarm_agent_api_request_duration_seconds_count", `result="2xx"`); !found {
		t.Errorf("%s: no API request observed", f.Name)
	}
	hm := mustScrape(t, func() (Metrics, error) { return f.HAProxyMetrics(ctx) })
	if v, _ := hm.Get("haproxy_backend_active_servers", farmProxy); v < 1 {
		t.Errorf("%s: HAProxy's exporter counts %v active servers in the farm", f.Name, v)
	}
}

// startServing starts a testbed and waits until its farm serves; it
// returns the owner of the sample FailoverIP.
func startServing(t *testing.T) (*Testbed, string) {
	t.Helper()
	tb := StartT(t, Options{})
	ctx := context.Background()
	if err := tb.WaitReady(ctx, 2*time.Minute); err != nil {
		t.Fatalf("the farm never served: %v", err)
	}
	owner, err := tb.Owner(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return tb, owner
}

func mustScrape(t *testing.T, scrape func() (Metrics, error)) Metrics {
	t.Helper()
	m, err := scrape()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkScrapeNeedsCredentials: the controller and an agent serve their
// metrics only over HTTPS and only to the scraper's ServiceAccount, which
// also reads front f's HAProxy exporter through its agent.
func checkScrapeNeedsCredentials(t *testing.T, ctx context.Context, tb *Testbed, f *Front, requests int) {
	stranger, err := tb.ServiceAccountToken(ctx, "stranger")
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range []struct{ what, ns, url string }{
		{"controller", "", ControllerMetricsURL},
		{"agent of " + f.Name, f.Namespace, AgentMetricsURL},
		{"HAProxy through the agent of " + f.Name, f.Namespace, AgentMetricsURL + "/haproxy"},
	} {
		for _, c := range []struct{ who, token, want string }{
			{"no token", "", "401 Unauthorized"},
			{"a ServiceAccount not bound to metrics-reader", stranger, "403 Forbidden"},
		} {
			if _, err := ScrapeAs(ctx, ep.ns, ep.url, c.token); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s with %s: %v, want %s", ep.what, c.who, err, c.want)
			}
		}
		if _, err := Scrape(ctx, ep.ns, strings.Replace(ep.url, "https:", "http:", 1)); err == nil {
			t.Errorf("%s answered in clear HTTP", ep.what)
		}
	}
	m := mustScrape(t, func() (Metrics, error) {
		return ScrapeAs(ctx, f.Namespace, AgentMetricsURL+"/haproxy", f.scrapeToken)
	})
	if v, _ := m.Get("haproxy_frontend_http_requests_total", vipFrontend); v < float64(requests) {
		t.Errorf("HAProxy's exporter through the agent counts %v requests to the farm, want at least %d", v, requests)
	}
}

// farmPrometheusConfig scrapes the testbed's controller as the chart's
// ServiceMonitor does, with the scraper's token.
const farmPrometheusConfig = `global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [rules.yaml]
scrape_configs:
  - job_name: webfarm-controller
    scheme: https
    authorization: {credentials_file: scraper.token}
    tls_config: {insecure_skip_verify: true}
    static_configs: [{targets: ["` + ControllerMetricsAddr + `"]}]
`

// startFarmPrometheus runs a real Prometheus on the machine's loopback with
// the chart's alerts, a front Down at once (frontDownFor 0s), scraping the
// controller; it returns its URL once the controller is scraped and no
// alert fires, or "" when there is no helm to render the rules with.
func startFarmPrometheus(t *testing.T, tb *Testbed) string {
	t.Helper()
	helm := os.Getenv("HELM")
	if helm == "" {
		helm = filepath.Join(testenv.RepoRoot(), "bin", "helm")
	}
	out, err := exec.Command(helm, "template", "webfarm", filepath.Join(testenv.RepoRoot(), "charts", "webfarm"),
		"--set", "metrics.prometheusRule.enabled=true", "--set", "metrics.prometheusRule.frontDownFor=0s",
		"--show-only", "templates/prometheus-rule.yaml").Output()
	if err != nil {
		t.Logf("no Prometheus: rendering the chart's rules with %s: %v", helm, err)
		return ""
	}
	var rule struct {
		Spec json.RawMessage `json:"spec"`
	}
	if err := yaml.Unmarshal(out, &rule); err != nil {
		t.Fatal(err)
	}
	url := promtest.Start(t, farmPrometheusConfig, map[string][]byte{"rules.yaml": rule.Spec, "scraper.token": []byte(tb.scrapeToken)})
	promtest.WaitFor(t, time.Minute, "Prometheus scraping the controller", func() (bool, error) {
		targets, err := promtest.Targets(url)
		return len(targets) == 1 && targets[0].Health == "up", err
	})
	// Three scrapes, so rules evaluated over the scraped farm: nothing
	// fires in steady state.
	promtest.WaitFor(t, time.Minute, "three scrapes of the controller", func() (bool, error) {
		var v struct {
			Data struct {
				Result []json.RawMessage `json:"result"`
			} `json:"data"`
		}
		resp, err := http.Get(url + "/api/v1/query?query=" + neturl.QueryEscape("min(count_over_time(webfarm_failoverip_has_owner[1m])) >= 3"))
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			return false, err
		}
		return len(v.Data.Result) == 1, nil
	})
	alerts, err := promtest.Alerts(url)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts {
		t.Errorf("alert %v %s in steady state", a.Labels, a.State)
	}
	return url
}
