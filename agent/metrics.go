package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/webfarm/webfarm/agent/haproxy"
	"github.com/webfarm/webfarm/agent/heartbeat"
	"github.com/webfarm/webfarm/agent/uploads"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/metrics"
)

// peerCollector reads the peer heartbeat counts at each scrape, so that the
// heartbeat package keeps its plain counters.
type peerCollector struct {
	stats               func() heartbeat.Stats
	sent, recv, rejects *prometheus.Desc
	challenges, ignored *prometheus.Desc
}

func newPeerCollector(stats func() heartbeat.Stats) *peerCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("webfarm_peer_"+name, help, labels, nil)
	}
	return &peerCollector{
		stats:      stats,
		sent:       d("datagrams_sent_total", "Peer datagrams this node sent: heartbeats, challenges and their answers."),
		recv:       d("heartbeats_accepted_total", "Peer heartbeats authenticated, from a member at its address, and new (not a replay)."),
		rejects:    d("datagrams_rejected_total", "Peer datagrams refused, by reason: bad_mac, version (another release's wire format), malformed, unknown_sender, wrong_source, no_sender_key (the sender publishes no key), bad_signature (not signed by the sender's own key), replayed, challenged (unproven sender, asked to resync), no_key.", "reason"),
		challenges: d("challenges_received_total", "Resync challenges received from peers."),
		ignored:    d("claims_ignored_total", "Claims about a failover IP this node does not know."),
	}
}

func (c *peerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.sent, c.recv, c.rejects, c.challenges, c.ignored} {
		ch <- d
	}
}

func (c *peerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.sent, s.Sent)
	counter(c.recv, s.Accepted)
	counter(c.challenges, s.Challenges)
	counter(c.ignored, s.IgnoredClaims)
	for reason, v := range map[string]uint64{
		"bad_mac": s.Unauthenticated, "malformed": s.Malformed, "replayed": s.Replayed, "challenged": s.Challenged,
		"no_key": s.NoKey, "unknown_sender": s.UnknownSender, "wrong_source": s.WrongSource,
		"version": s.OldVersion, "no_sender_key": s.NoSenderKey, "bad_signature": s.BadSignature,
	} {
		counter(c.rejects, v, reason)
	}
}

// MetricNames are the names of every metric the agent serves beside
// controller-runtime's, for checks of the dashboards and alerts.
func MetricNames() []string {
	return metrics.Names(append(metrics.AgentCollectors(),
		newPeerCollector(func() heartbeat.Stats { return heartbeat.Stats{} }), accessLogCollector(noLines{}), logCollector(noLines{}),
		newUploadsCollector(func() map[string]uploads.Status { return nil }, time.Now))...)
}

// accessLogCollector reads the relay's counts at each scrape.
func accessLogCollector(lines LineCounts) prometheus.Collector {
	return lineCollector("webfarm_access_log_lines_total",
		"HAProxy access-log lines the agent wrote to its stdout (written) or dropped because its queue was full (dropped); HAProxy counts the lines it could not send itself (DroppedLogs).",
		lines)
}

// logCollector reads the counts of the agent's own log queue at each
// scrape.
func logCollector(lines LineCounts) prometheus.Collector {
	return lineCollector("webfarm_agent_log_lines_total",
		"Lines of the agent's own log written to its stderr (written) or dropped because its queue was full, stderr blocking (dropped).",
		lines)
}

// lineCollector serves a queue's written and dropped lines as one counter.
func lineCollector(name, help string, lines LineCounts) prometheus.Collector {
	desc := prometheus.NewDesc(name, help, []string{"result"}, nil)
	return collectorFunc{desc: desc, collect: func(ch chan<- prometheus.Metric) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(lines.Written()), "written")
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(lines.Dropped()), "dropped")
	}}
}

// noLines counts nothing.
type noLines struct{}

func (noLines) Written() uint64 { return 0 }
func (noLines) Dropped() uint64 { return 0 }

type collectorFunc struct {
	desc    *prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

// timedTransport observes every request of the agent's direct API client.
type timedTransport struct{ next http.RoundTripper }

func (t timedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	result := "error"
	if err == nil {
		result = strconv.Itoa(resp.StatusCode/100) + "xx"
	}
	metrics.APIRequestDuration.WithLabelValues(req.Method, result).Observe(time.Since(start).Seconds())
	return resp, err
}

// exporterProxy serves HAProxy's exporter at metrics.HAProxyPath of the
// agent's metrics endpoint, behind the endpoint's authentication and
// authorization: HAProxy cannot check a Kubernetes token, so its own port
// can stay on loopback and a scraper needs the same rights as for /metrics.
type exporterProxy struct {
	opts  Options
	cache client.Reader
}

func (p exporterProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	addr, err := p.exporter(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.URL.Path, pr.Out.URL.RawPath = "http", addr.String(), haproxy.MetricsPath, ""
		pr.Out.Host = ""
		// The scraper's token is for the agent, not for HAProxy.
		pr.Out.Header.Del("Authorization")
	}}
	proxy.ServeHTTP(w, r)
}

// exporter is where HAProxy serves its exporter now: on the node's address
// (its FrontNode's spec.address) unless configured elsewhere.
func (p exporterProxy) exporter(ctx context.Context) (netip.AddrPort, error) {
	var node netip.Addr
	if p.opts.HAProxyMetrics != "off" {
		front := &webfarmv1.FrontNode{}
		if err := p.cache.Get(ctx, types.NamespacedName{Name: p.opts.NodeName}, front); err == nil {
			node, _ = netip.ParseAddr(front.Spec.Address)
		}
	}
	addr, err := p.opts.haproxyMetrics(node)
	switch {
	case err != nil:
		return addr, err
	case p.opts.HAProxyMetrics == "off":
		return addr, errors.New("HAProxy's exporter is off (--haproxy-metrics=off)")
	case !addr.IsValid():
		return addr, fmt.Errorf("HAProxy's exporter is on node %s's address, not known yet", p.opts.NodeName)
	}
	return addr, nil
}
