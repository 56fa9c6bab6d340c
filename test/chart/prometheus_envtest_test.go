package chart

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/webfarm/webfarm/internal/metrics"
	"github.com/webfarm/webfarm/internal/promtest"
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
	cfg, admin := controlPlane(t)
	installWithScraper(t, admin)
	if err := metrics.RegisterAgent(); err != nil {
		t.Fatal(err)
	}
	target := startMetricsServer(t, impersonatedConfig(cfg, "webfarm-agent"))
	rules, err := os.ReadFile(writeAlertRules(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	api := promtest.Start(t, fmt.Sprintf(prometheusConfig, target), map[string][]byte{
		"rules.yaml":     rules,
		"scraper.token":  []byte(serviceAccountToken(t, admin, "prometheus")),
		"stranger.token": []byte(serviceAccountToken(t, admin, "stranger")),
	})

	health := map[string]string{"scraper": "up", "scraper-haproxy": "up", "stranger": "down", "anonymous": "down"}
	promtest.WaitFor(t, time.Minute, "every target scraped once, as expected", func() (bool, error) {
		targets, err := promtest.Targets(api)
		if err != nil {
			return false, err
		}
		for _, tg := range targets {
			job := tg.Labels["job"]
			switch {
			case tg.Health == "unknown":
				return false, nil
			case tg.Health != health[job]:
				return false, fmt.Errorf("target %s is %s (%s), want %s", job, tg.Health, tg.LastError, health[job])
			}
		}
		for _, tg := range targets {
			t.Logf("target %s: %s %s", tg.Labels["job"], tg.Health, tg.LastError)
		}
		return len(targets) == len(health), nil
	})

	refused := time.Now()
	metrics.HAProxyRefused.Inc()
	promtest.WaitFor(t, time.Minute, "WebfarmHAProxyConfigRefused firing", func() (bool, error) {
		firing, err := promtest.Firing(api, "WebfarmHAProxyConfigRefused")
		for _, a := range firing {
			if a.Labels["job"] != "scraper" {
				return false, fmt.Errorf("the alert fired on job %s, which must read nothing", a.Labels["job"])
			}
		}
		return len(firing) > 0, err
	})
	t.Logf("WebfarmHAProxyConfigRefused fired %v after the refusal (scrape and evaluation every 1s)", time.Since(refused).Round(time.Millisecond))
}
