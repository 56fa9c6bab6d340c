package metrics

import "github.com/prometheus/client_golang/prometheus"

// OwnerChanges counts the owners the controller wrote.
var OwnerChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: namespace, Subsystem: "failoverip", Name: "owner_changes_total",
	Help: "Owners the controller wrote for a failover IP, each at a new epoch (including none, when it withdrew the address).",
}, []string{"namespace", "failoverip"})
