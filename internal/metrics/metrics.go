// Package metrics defines webfarm's own Prometheus metrics, registered in
// controller-runtime's registry so that the metrics endpoint of each
// manager serves them beside controller-runtime's. Every label takes values
// from a small set: a state, a reason, or the name of an object the cluster
// holds a handful of (a FailoverIP, a front).
package metrics

import (
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

const namespace = "webfarm"

// Register adds collectors to controller-runtime's registry, each in place
// of one that collects the same metrics: the last manager set up in a
// process (tests start several) is the one scraped.
func Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		ctrlmetrics.Registry.Unregister(c)
		if err := ctrlmetrics.Registry.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// durationBuckets span a HAProxy validation (tens of ms) to an API call at
// its deadline (seconds).
var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// AgentCollectors are the agent's metrics defined here; the agent adds
// those it reads at each scrape.
func AgentCollectors() []prometheus.Collector {
	return []prometheus.Collector{
		HAProxyReloads, HAProxyRefused, HAProxySyncDuration, HAProxyUp, HAProxyFarms,
		DrainSyncDuration, DrainSyncFailures,
		Announcements, TakeoverWait, FailoverTransitions, Fences, Witnesses,
		APIRequestDuration, PeerRoundTrip,
		UploadsPropagation,
	}
}

// ControllerCollectors are the controller's metrics defined here; the
// controller adds those it reads from its cache at each scrape.
func ControllerCollectors() []prometheus.Collector {
	return []prometheus.Collector{OwnerChanges}
}

// RegisterAgent registers the agent's metrics, so that the controller's
// endpoint does not show them as zeros.
func RegisterAgent() error { return Register(AgentCollectors()...) }

// RegisterController registers the controller's metrics.
func RegisterController() error { return Register(ControllerCollectors()...) }

// fqName finds a metric's name in its description, which client_golang
// does not expose otherwise.
var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// Names returns the names of the metrics that cs describe, for checks that
// dashboards and alerts read metrics that exist.
func Names(cs ...prometheus.Collector) []string {
	ch := make(chan *prometheus.Desc)
	go func() {
		for _, c := range cs {
			c.Describe(ch)
		}
		close(ch)
	}()
	var names []string
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			names = append(names, m[1])
		}
	}
	return names
}
