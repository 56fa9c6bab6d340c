package v1alpha1

import "time"

// LocalObjectReference names an object in the namespace of the object that
// holds the reference.
type LocalObjectReference struct {
	// name of the referenced object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
}

// Condition types shared by the three kinds.
const (
	// ConditionReady is True when the object does what its spec asks.
	ConditionReady = "Ready"
	// ConditionDegraded is True when the object works, but with less redundancy
	// than its spec asks for.
	ConditionDegraded = "Degraded"
)

// Annotations and labels read or written by webfarm.
const (
	// DrainAnnotation on a Node asks webfarm to drain that node's front:
	// "true" drains it, "false" or no annotation keeps it serving. Any other
	// value is reported as a Warning event on the Node and treated as "false".
	DrainAnnotation = "webfarm.io/drain"
)

// NodeLeasePrefix starts the name of every node's heartbeat Lease,
// "webfarm-node-<node>" in the operator namespace: its agent renews it, the
// controller watches it (docs/architecture.md).
const NodeLeasePrefix = "webfarm-node-"

// QuietLeaseInterval is how often an agent renews its node Lease when no
// failover IP needs it faster: the peers vouch for a live owner, so in steady
// state each front writes its Lease this rarely (issue 9, a quiet API). The
// controller counts a front as present while it saw the Lease renewed within
// PresenceWindow.
const QuietLeaseInterval = 10 * time.Second

// PresenceWindow is how long after its last Lease renewal the controller
// still counts a front as present (a candidate, not Down): two quiet
// renewals and a deadtime.
func PresenceWindow(deadtime time.Duration) time.Duration { return 2*QuietLeaseInterval + deadtime }

// LeaseRenewalVersion names one renewal of a node Lease by its renewTime,
// compared only for equality, never as a time: it comes from another
// machine's clock (FailoverIPStatus.OwnerRenewal).
func LeaseRenewalVersion(renewTime time.Time) string {
	return renewTime.UTC().Format(time.RFC3339Nano)
}

// NodeLeaseName is the name of node's heartbeat Lease.
func NodeLeaseName(node string) string { return NodeLeasePrefix + node }
