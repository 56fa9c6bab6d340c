package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// The agent's HAProxy.
var (
	HAProxyReloads = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "haproxy", Name: "reloads_total",
		Help: "Times the agent started or reloaded HAProxy with a new configuration.",
	})
	HAProxyRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "haproxy", Name: "config_refused_total",
		Help: "Configurations that haproxy -c refused; the previous one kept running.",
	})
	HAProxySyncDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "haproxy", Name: "sync_duration_seconds",
		Help:    "Time to render, validate and (re)load HAProxy's configuration, by outcome (unchanged, reloaded, refused, failed).",
		Buckets: durationBuckets,
	}, []string{"outcome"})
	HAProxyUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Subsystem: "haproxy", Name: "up",
		Help: "1 when HAProxy's runtime API answered the last statistics read, else 0.",
	})
	HAProxyFarms = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Subsystem: "haproxy", Name: "farms",
		Help: "WebFarms in the configuration HAProxy should run on this node; HAProxy runs only when it is above 0.",
	})
)

// HAProxy sync outcomes.
const (
	OutcomeUnchanged = "unchanged"
	OutcomeReloaded  = "reloaded"
	OutcomeRefused   = "refused"
	OutcomeFailed    = "failed"
)

// The drain chain.
var (
	DrainSyncDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "drain_chain", Name: "sync_duration_seconds",
		Help:    "Time to bring the DNAT drain chain in line with the cluster.",
		Buckets: durationBuckets,
	})
	DrainSyncFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "drain_chain", Name: "sync_failures_total",
		Help: "Drain chain syncs that failed.",
	})
)

// Failover addresses on this node.
var (
	Announcements = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "failover", Name: "announcements_total",
		Help: "Announcements of a failover address taken over (gratuitous ARP or unsolicited neighbour advertisement rounds), by family and result (sent, failed, stopped by a release).",
	}, []string{"family", "result"})
	TakeoverWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "failover", Name: "takeover_wait_seconds",
		Help: "From the agent seeing its node named owner of a failover IP at a new epoch to its first announcement of the address: " +
			"the agent's share of a take-over (its wait for the previous owner's grant and its own promises).",
		Buckets: []float64{.01, .05, .1, .25, .5, 1, 2, 3, 5, 10, 30},
	})
	Fences = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "failover", Name: "fences_total",
		Help: "Failover addresses this node fenced (removed without a hand-off), by cause: ProofExpired, NewerView, StatusRolledBack, Superseded, InvalidAddress, Unrecorded, or Unknown.",
	}, []string{"namespace", "failoverip", "cause"})
	Witnesses = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "failover", Name: "witness_duration_seconds",
		Help: "Witnesses this node wrote as the owner of a failover IP its peers did not vouch for (status.ownerWitness), by result: " +
			"landed, refused (the API server answered no: the status no longer names it owner at that epoch), failed (timeout or server error); " +
			"a landed one proves the owner alive for deadtime minus guard from its send.",
		Buckets: durationBuckets,
	}, []string{"result"})
	FailoverTransitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "failover", Name: "transitions_total",
		Help: "Changes of what this node reports for a failover IP, by the state entered: Holding (a take-over), Released, Fenced, OwnerUnheard (a voter stopped hearing the owner).",
	}, []string{"namespace", "failoverip", "state"})
)

// The peer heartbeats.
var PeerRoundTrip = prometheus.NewHistogram(prometheus.HistogramOpts{
	Namespace: namespace, Subsystem: "peer", Name: "round_trip_seconds",
	Help: "From a peer heartbeat this node sent to a peer's heartbeat that acks it, less the time the peer kept it before answering: " +
		"the network both ways and both agents' receive paths, all peers together.",
	Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
})

// The agent's requests to the API server.
var APIRequestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Namespace: namespace, Subsystem: "agent", Name: "api_request_duration_seconds",
	Help:    "Requests of the agent's direct API client (Lease, status, Secrets, ConfigMaps), by method and result: the status class (2xx, 4xx, 5xx) or error.",
	Buckets: durationBuckets,
}, []string{"method", "result"})
