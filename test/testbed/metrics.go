package testbed

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Where the testbed's processes serve their metrics: each agent on the
// loopback of its front's namespace, the controller on the machine's
// loopback (one testbed runs at a time), HAProxy's exporter on each front's
// address.
const (
	AgentMetricsAddr      = "127.0.0.1:8083"
	ControllerMetricsAddr = "127.0.0.1:18080"
	HAProxyMetricsPort    = 8404
)

// Metrics are the samples of one scrape, by series as exposed:
// `name{label="value",...}`, labels sorted as the exposition sorts them.
type Metrics map[string]float64

// Get returns the value of the series named name whose labels include
// every label of labels ("" when none), and whether there is one.
func (m Metrics) Get(name string, labels ...string) (float64, bool) {
	for series, v := range m {
		if n, rest, _ := strings.Cut(series, "{"); n == name && hasLabels(rest, labels) {
			return v, true
		}
	}
	return 0, false
}

// Sum adds up the values of every series named name whose labels include
// every label of labels.
func (m Metrics) Sum(name string, labels ...string) float64 {
	var sum float64
	for series, v := range m {
		if n, rest, _ := strings.Cut(series, "{"); n == name && hasLabels(rest, labels) {
			sum += v
		}
	}
	return sum
}

func hasLabels(rest string, labels []string) bool {
	for _, l := range labels {
		if !strings.Contains(rest, l) {
			return false
		}
	}
	return true
}

// Scrape reads a Prometheus text exposition at url, from inside network
// namespace nsName (the machine's own when empty).
func Scrape(ctx context.Context, nsName, url string) (Metrics, error) {
	return ScrapeAs(ctx, nsName, url, "")
}

// ScrapeAs is Scrape with a bearer token (none when empty). It trusts any
// certificate: the binaries' metrics endpoints present self-signed ones.
func ScrapeAs(ctx context.Context, nsName, url, token string) (Metrics, error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // self-signed, as in the chart's default
	if nsName != "" {
		tr.DialContext = DialInNamespace(nsName)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	m := Metrics{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			return nil, fmt.Errorf("GET %s: sample %q: %v", url, line, err)
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// AgentMetricsURL is where the agent of a front serves its metrics, in
// the front's namespace.
const AgentMetricsURL = "https://" + AgentMetricsAddr + "/metrics"

// ControllerMetricsURL is where the controller serves its metrics.
const ControllerMetricsURL = "https://" + ControllerMetricsAddr + "/metrics"

// AgentMetrics scrapes the agent of front f, as the testbed's scraper.
func (f *Front) AgentMetrics(ctx context.Context) (Metrics, error) {
	return ScrapeAs(ctx, f.Namespace, AgentMetricsURL, f.scrapeToken)
}

// HAProxyMetrics scrapes the exporter of front f's HAProxy.
func (f *Front) HAProxyMetrics(ctx context.Context) (Metrics, error) {
	return Scrape(ctx, f.Namespace, fmt.Sprintf("http://%s:%d/metrics", f.Address, HAProxyMetricsPort))
}

// ControllerMetrics scrapes the controller, as the testbed's scraper.
func (tb *Testbed) ControllerMetrics(ctx context.Context) (Metrics, error) {
	return ScrapeAs(ctx, "", ControllerMetricsURL, tb.scrapeToken)
}
