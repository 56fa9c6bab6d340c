package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FailoverIPSpec declares one floating address and the rules that move it,
// with the meaning Heartbeat gave them.
// +kubebuilder:validation:XValidation:rule="duration(self.deadtime) > duration(self.keepalive)",message="deadtime must exceed keepalive",fieldPath=".deadtime"
// +kubebuilder:validation:XValidation:rule="duration(self.deadtime) - duration(self.guard) - duration(self.keepalive) >= duration(self.keepalive)",message="deadtime minus guard must be at least twice keepalive: an owner proves itself by a heartbeat or a Lease renewal confirmed within deadtime minus guard, and the confirmation takes up to a keepalive more",fieldPath=".guard"
// +kubebuilder:validation:XValidation:rule="has(self.interface) == has(oldSelf.interface)",message="interface is immutable: it cannot be set or removed after creation; create a new FailoverIP and delete this one",fieldPath=".interface"
// +kubebuilder:validation:XValidation:rule="!has(self.nodeSelector) || !has(self.frontSelector)",message="a FailoverIP takes its candidates either from the WebFarms that list it (narrowed by frontSelector) or from nodeSelector, not both",fieldPath=".nodeSelector"
// +kubebuilder:validation:XValidation:rule="!has(self.checks) || has(self.nodeSelector)",message="checks decide the candidates of a FailoverIP that stands on its own: set nodeSelector",fieldPath=".checks"
// +kubebuilder:validation:XValidation:rule="has(self.nodeSelector) == has(oldSelf.nodeSelector)",message="nodeSelector can be neither set nor removed after creation: it decides where the address's candidates come from",fieldPath=".nodeSelector"
type FailoverIPSpec struct {
	// address is the floating IPv4 or IPv6 address (no prefix length). Exactly
	// one healthy front holds it at a time. It cannot change: create a new
	// FailoverIP instead, so that the old address is removed everywhere
	// before the object goes. Two FailoverIPs with the same address, in any
	// namespaces, are both in Conflict and neither is announced.
	// +required
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="address is immutable: create a new FailoverIP with the new address and delete this one"
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="address must be an IPv4 or IPv6 address without prefix length"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || (!ip(self).isLoopback() && !ip(self).isUnspecified() && !ip(self).isLinkLocalUnicast() && ip(self).isGlobalUnicast())",message="address must be a unicast address that is not loopback, link-local or unspecified"
	Address string `json:"address"`

	// interface is the network interface the owner adds the address to. By
	// default, the interface that holds the node's own address. It cannot be
	// changed, set or removed after creation.
	// +optional
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="interface is immutable: create a new FailoverIP with the new interface and delete this one"
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_.-]+$`
	Interface string `json:"interface,omitempty"`

	// frontSelector narrows the nodes that may hold the address. Candidates
	// are the fronts of the WebFarms that list this FailoverIP in their
	// spec.failoverIPs and, when set, match this selector too.
	// +optional
	FrontSelector *metav1.LabelSelector `json:"frontSelector,omitempty"`

	// nodeSelector makes the FailoverIP stand on its own, with no WebFarm:
	// its candidates are the nodes this selects (an empty selector selects
	// every node) whose health checks pass. A WebFarm that lists such a
	// FailoverIP adds no candidate to it. It can be neither set nor
	// removed after creation; the selector itself may change.
	// +optional
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`

	// checks run on every selected node, each with keepalived's
	// track_script meaning (interval, timeout, rise, fall); a node is a
	// candidate only while all of them pass. A node whose checks are not
	// known yet (its agent just started) is no candidate, unless it owns
	// the address. Only with nodeSelector.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=8
	Checks []HealthCheck `json:"checks,omitempty"`

	// hooks run on this FailoverIP's transitions on each node (master,
	// backup, fault), as keepalived's notify scripts.
	// +optional
	Hooks *NotifyHooks `json:"hooks,omitempty"`

	// preferredNode is the node that takes the address when several could:
	// Heartbeat's master node.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	PreferredNode string `json:"preferredNode,omitempty"`

	// autoFailback gives the address back to preferredNode as soon as it is a
	// healthy candidate again, through a planned hand-off. Off by default, as
	// in the original setup: a recovered node first deserves a look.
	// +optional
	// +kubebuilder:default=false
	AutoFailback bool `json:"autoFailback"`

	// keepalive is how often agents send each other their peer heartbeats,
	// and how often an owner that its peers cannot vouch for renews its
	// Lease.
	// +optional
	// +kubebuilder:default="200ms"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('1m')",message="keepalive must be between 100ms and 1m"
	Keepalive metav1.Duration `json:"keepalive,omitempty"`

	// deadtime is how long an owner's heartbeats may stay silent before the
	// address moves away from it.
	// +optional
	// +kubebuilder:default="700ms"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('300ms') && duration(self) <= duration('10m')",message="deadtime must be between 300ms and 10m"
	Deadtime metav1.Duration `json:"deadtime,omitempty"`

	// guard is the safety margin around deadtime: an owner that cannot prove
	// it is alive removes the address after deadtime minus guard, and a new
	// owner is chosen only after deadtime plus guard, so the two never
	// announce the address at once.
	// +optional
	// +kubebuilder:default="150ms"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('50ms')",message="guard must be at least 50ms"
	Guard metav1.Duration `json:"guard,omitempty"`

	// pingTargets are addresses, such as the gateway, that a front must reach
	// to be a candidate, as Heartbeat's ipfail ping group: a front serves
	// while any one of them answers an ICMP echo. Empty: no ping check.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=4
	// +kubebuilder:validation:items:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="self.all(t, isIP(t))",message="pingTargets must be IPv4 or IPv6 addresses without prefix length"
	PingTargets []string `json:"pingTargets,omitempty"`
}

// FailoverIPStatus records who owns the address, under a fencing epoch.
type FailoverIPStatus struct {
	// observedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// owner is the node that may hold the address; empty when none may.
	// +optional
	Owner string `json:"owner,omitempty"`

	// epoch is the fencing token: it grows by one at every change of owner.
	// An agent holds the address only as owner of the current epoch.
	// +optional
	Epoch int64 `json:"epoch"`

	// previousOwner is the owner of the previous epoch.
	// +optional
	PreviousOwner string `json:"previousOwner,omitempty"`

	// previousOwnerReleased is true when the previous owner acknowledged
	// removing the address, so the owner may announce it at once.
	// +optional
	PreviousOwnerReleased bool `json:"previousOwnerReleased,omitempty"`

	// lastOwner is the node named owner at the latest earlier epoch that
	// had one (lastOwnerEpoch), whatever epochs without an owner came
	// since: a node named owner with its own name here knows that no other
	// node was named owner since it was, so no other server took writes
	// behind the address. Notify hooks get it as WEBFARM_LAST_OWNER.
	// +optional
	LastOwner string `json:"lastOwner,omitempty"`

	// lastOwnerEpoch is the epoch at which lastOwner was named.
	// +optional
	LastOwnerEpoch int64 `json:"lastOwnerEpoch,omitempty"`

	// releaseRequested asks the owner to remove the address and acknowledge,
	// for a planned hand-off.
	// +optional
	ReleaseRequested bool `json:"releaseRequested,omitempty"`

	// timing is the keepalive, deadtime and guard that the agents act on:
	// the spec's, copied here by the controller with the generation they
	// come from. Agents read them here rather than in the spec, so that the
	// controller knows every value an agent may be using: one it never
	// managed to write was never used. Empty in a status written by an older
	// controller: then agents act on the spec.
	// +optional
	Timing *AgentTiming `json:"timing,omitempty"`

	// fencingTiming is the longest deadtime and guard that the owner, or a
	// previous owner it still waits for, may be using: the controller moves
	// the address away from a silent owner only after its heartbeat has been
	// stale for their sum, and a new owner listens for the previous one for
	// that deadtime. A raise of timing takes effect here in the same write;
	// a cut only once the owner reports holding the address under timing's
	// current generation, since an owner cut off from the API server keeps
	// using the values it last saw.
	// +optional
	FencingTiming *FencingTiming `json:"fencingTiming,omitempty"`

	// candidates lists the nodes that may hold the address now.
	// +optional
	// +listType=atomic
	Candidates []string `json:"candidates,omitempty"`

	// voters are the nodes that vouch for the owner at this epoch: the
	// owner holds the address without renewing its Lease only while every
	// other voter confirms it, and the address moves away from a silent
	// owner only once a voter reports it unheard. Written with the epoch and
	// never changed within one. Empty in a status written by an older
	// controller: then the owner proves itself through its Lease or its
	// candidates, as before.
	// +optional
	// +listType=atomic
	Voters []string `json:"voters,omitempty"`

	// ownerRenewal acknowledges the last renewal of the owner's node Lease
	// that the controller saw (its renewTime, as LeaseRenewalVersion spells
	// it). The owner counts a renewal as proof of liveness only once it is
	// acknowledged here: the controller moves the address by writing this
	// same object, so a renewal it has not seen can never outlive a move.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	OwnerRenewal string `json:"ownerRenewal,omitempty"`

	// ownerWitness is the owner's own proof of liveness through the API
	// server, written by the owner's agent alone, by a compare-and-swap on
	// this status (a JSON patch that tests the owner and the epoch): the
	// API server's vote. An owner its peers do not vouch for (the one
	// server left of two, say) counts a witness as proof from when it sent
	// it: the controller moves the address by writing this same object, so
	// it sees every witness that landed before a move, and waits deadtime
	// plus guard after the last one it saw. One API round trip, where an
	// acknowledged Lease renewal takes the controller's watch and write too.
	// +optional
	OwnerWitness *OwnerWitness `json:"ownerWitness,omitempty"`

	// ownerWitnessCounted: the controller that wrote this status counts
	// owner witnesses before it moves the address. An agent writes and
	// counts witnesses only while it is set: a controller from before
	// witnesses would move the address without them, and its status
	// writes drop this field.
	// +optional
	OwnerWitnessCounted bool `json:"ownerWitnessCounted,omitempty"`

	// lastTransitionTime is when the owner last changed.
	// +optional
	LastTransitionTime *metav1.Time `json:"lastTransitionTime,omitempty"`

	// transitions counts the changes of owner.
	// +optional
	Transitions int64 `json:"transitions"`

	// nodes lists, for a FailoverIP with nodeSelector, every selected node:
	// whether it is a candidate and why, its health checks and the last
	// notify hook it ran.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Nodes []NodeEligibility `json:"nodes,omitempty"`

	// conditions: Ready (a node owns and serves the address).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AgentTiming is the timing the agents act on, and the spec generation it
// comes from.
type AgentTiming struct {
	// keepalive is the spec's keepalive.
	// +required
	// +kubebuilder:validation:Type=string
	Keepalive metav1.Duration `json:"keepalive"`
	// deadtime is the spec's deadtime.
	// +required
	// +kubebuilder:validation:Type=string
	Deadtime metav1.Duration `json:"deadtime"`
	// guard is the spec's guard.
	// +required
	// +kubebuilder:validation:Type=string
	Guard metav1.Duration `json:"guard"`
	// generation is the FailoverIP generation whose spec these values come
	// from; an agent reports it as the observedGeneration of its decisions.
	// +required
	Generation int64 `json:"generation"`
}

// FencingTiming is a deadtime and guard that an owner may be using.
type FencingTiming struct {
	// deadtime is the longest deadtime the owner may be using.
	// +required
	// +kubebuilder:validation:Type=string
	Deadtime metav1.Duration `json:"deadtime"`
	// guard is the longest guard the owner may be using.
	// +required
	// +kubebuilder:validation:Type=string
	Guard metav1.Duration `json:"guard"`
}

// FailoverIP reasons.
const (
	ReasonOwned             = "Owned"
	ReasonNoCandidate       = "NoCandidate"
	ReasonAwaitingFence     = "AwaitingFence"
	ReasonAwaitingRelease   = "AwaitingRelease"
	ReasonOwnerNotAnnounced = "OwnerNotAnnounced"
	// ReasonConflict: another FailoverIP has the same address; neither is
	// given an owner, and a held address is taken away first.
	ReasonConflict = "Conflict"
	// ReasonDeleting: the FailoverIP is being deleted; it goes once its last
	// owner no longer holds the address.
	ReasonDeleting = "Deleting"
)

// FailoverIPFinalizer keeps a deleted FailoverIP until its address is held
// nowhere: the controller takes the ownership away at a new epoch and removes
// the finalizer once the last owner released the address or must have fenced
// itself (docs/architecture.md).
const FailoverIPFinalizer = "webfarm.io/failoverip"

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=fip,categories=webfarm-all
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.address`
// +kubebuilder:printcolumn:name="Owner",type=string,JSONPath=`.status.owner`
// +kubebuilder:printcolumn:name="Epoch",type=integer,JSONPath=`.status.epoch`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// FailoverIP is a floating address that exactly one healthy front holds and
// announces; it moves when that front dies or drains.
type FailoverIP struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the address and how it moves.
	// +required
	Spec FailoverIPSpec `json:"spec"`

	// status records who owns the address.
	// +optional
	Status FailoverIPStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// FailoverIPList is a list of FailoverIPs.
type FailoverIPList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FailoverIP `json:"items"`
}

func init() {
	SchemeBuilder.Register(&FailoverIP{}, &FailoverIPList{})
}

// OwnerWitness is one proof of liveness an owner wrote itself
// (FailoverIPStatus.OwnerWitness).
type OwnerWitness struct {
	// node is the owner that wrote it.
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node"`
	// epoch is the epoch at which it wrote it; a witness proves nothing at
	// another epoch.
	// +kubebuilder:validation:Minimum=1
	Epoch int64 `json:"epoch"`
	// renewal names this witness, so that each one is a change the
	// controller sees: when the owner sent it, by the owner's clock,
	// compared only for equality.
	// +kubebuilder:validation:MaxLength=64
	Renewal string `json:"renewal"`
}
