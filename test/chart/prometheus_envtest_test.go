package chart

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/webfarm/webfarm/internal/metrics"
)

// prometheusConfig scrapes one metrics endpoint three times over: as the
// chart's ServiceMonitors do (HTTPS, the token of the ServiceAccount bound
// to metrics-reader), with the token of a ServiceAccount that is not, and
// with no token; and HAProxy's path as the scraper.
const prometheusConfig = `global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [rules.yaml]
scrape_configs:
  - job_name: scraper
    scheme: https
    authorization: {credentials_file: scraper.token}
    tls_config: {insecure_skip_verify: true}
    static_configs: [{targets: ["%[1]s"]}]
  - job_name: scraper-haproxy
    scheme: https
    metrics_path: /metrics/haproxy
    authorization: {credentials_file: scraper.token}
    tls_config: {insecure_skip_verify: true}
    static_configs: [{targets: ["%[1]s"]}]
  - job_name: stranger
    scheme: https
    authorization: {credentials_file: stranger.token}
    tls_config: {insecure_skip_verify: true}
    static_configs: [{targets: ["%[1]s"]}]
  - job_name: anonymous
    scheme: https
    tls_config: {insecure_skip_verify: true}
    static_configs: [{targets: ["%[1]s"]}]
`

// TestEnvtestPrometheusScrapesWithToken: a real Prometheus (Debian's), on
// loopback, with the chart's alert rules, scrapes a metrics endpoint served
// as the agent serves it: with the scraper's token it reads /metrics and
// /metrics/haproxy, without a token or with another ServiceAccount's it
// reads nothing, and a configuration HAProxy refuses fires
// WebfarmHAProxyConfigRefused.
func TestEnvtestPrometheusScrapesWithToken(t *testing.T) {
	prometheus, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (hack/install-packages.sh installs Debian's prometheus)")
	}
	cfg, admin := controlPlane(t)
	installWithScraper(t, admin)
	dir := t.TempDir()
	for name, sa := range map[string]string{"scraper.token": "prometheus", "stranger.token": "stranger"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(serviceAccountToken(t, admin, sa)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := metrics.RegisterAgent(); err != nil {
		t.Fatal(err)
	}
	target := startMetricsServer(t, impersonatedConfig(cfg, "webfarm-agent"))
	writeAlertRules(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), fmt.Appendf(nil, prometheusConfig, target), 0o600); err != nil {
		t.Fatal(err)
	}
	api := startPrometheus(t, prometheus, dir)

	health := map[string]string{"scraper": "up", "scraper-haproxy": "up", "stranger": "down", "anonymous": "down"}
	waitFor(t, "every target scraped once, as expected", func() (bool, error) {
		var targets struct {
			Data struct {
				ActiveTargets []struct {
					Labels    map[string]string `json:"labels"`
					Health    string            `json:"health"`
					LastError string            `json:"lastError"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if err := getJSON(api+"/api/v1/targets", &targets); err != nil {
			return false, err
		}
		seen := 0
		for _, tg := range targets.Data.ActiveTargets {
			job := tg.Labels["job"]
			if tg.Health == "unknown" {
				return false, nil
			}
			if tg.Health != health[job] {
				return false, fmt.Errorf("target %s is %s (%s), want %s", job, tg.Health, tg.LastError, health[job])
			}
			t.Logf("target %s: %s %s", job, tg.Health, tg.LastError)
			seen++
		}
		return seen == len(health), nil
	})

	refused := time.Now()
	metrics.HAProxyRefused.Inc()
	waitFor(t, "WebfarmHAProxyConfigRefused firing", func() (bool, error) {
		var alerts struct {
			Data struct {
				Alerts []struct {
					Labels map[string]string `json:"labels"`
					State  string            `json:"state"`
				} `json:"alerts"`
			} `json:"data"`
		}
		if err := getJSON(api+"/api/v1/alerts", &alerts); err != nil {
			return false, err
		}
		for _, a := range alerts.Data.Alerts {
			if a.Labels["alertname"] == "WebfarmHAProxyConfigRefused" && a.State == "firing" {
				if a.Labels["job"] != "scraper" {
					return false, fmt.Errorf("the alert fired on job %s, which must read nothing", a.Labels["job"])
				}
				return true, nil
			}
		}
		return false, nil
	})
	t.Logf("WebfarmHAProxyConfigRefused fired %v after the refusal (scrape and evaluation every 1s)", time.Since(refused).Round(time.Millisecond))
}

// startPrometheus runs prometheus with dir/prometheus.yml on a free
// loopback port until t ends, and returns its URL once it is ready.
func startPrometheus(t *testing.T, binary, dir string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var logs bytes.Buffer
	cmd := exec.Command(binary, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus:\n%s", logs.String())
		}
	})
	url := "http://" + addr
	waitFor(t, "prometheus ready", func() (bool, error) {
		resp, err := http.Get(url + "/-/ready")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	return url
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// waitFor polls cond every 200ms for up to a minute; an error stops it.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return cond()
	})
	if err != nil {
		t.Fatalf("%s: %v", what, strings.TrimSpace(err.Error()))
	}
}
