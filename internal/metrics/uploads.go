package metrics

import "github.com/prometheus/client_golang/prometheus"

// UploadsPropagation times each local change of a declared directory from
// its first event to its arrival on one peer; the agent reads the rest of
// the uploads' figures at each scrape.
var UploadsPropagation = prometheus.NewHistogram(prometheus.HistogramOpts{
	Namespace: namespace, Subsystem: "uploads", Name: "propagation_seconds",
	Help:    "Time from a local change of a declared directory (its first event) to its arrival on one peer, quiet period included.",
	Buckets: durationBuckets,
})
