// Package controllers holds the webfarm-controller's reconcilers: one per kind
// (FrontNode, FailoverIP, WebFarm), each a thin shell over pure decision code
// kept beside it (frontnode_decisions.go, failoverip_election.go,
// webfarm_status.go).
package controllers

// Reasons used by the controller beyond those of api/v1alpha1: condition
// reasons first, then reasons of events.
const (
	// ReasonHandOffBlocked: the owner drains or shuts down but no other
	// candidate can take the address, so the owner keeps it.
	ReasonHandOffBlocked = "HandOffBlocked"
	// ReasonProxyHealthy: the agent reports HAProxy running the wanted
	// configuration.
	ReasonProxyHealthy = "ProxyHealthy"
	// ReasonProxyUnhealthy: the agent reports HAProxy not running the wanted
	// configuration; the condition message carries the agent's message.
	ReasonProxyUnhealthy = "ProxyUnhealthy"
	// ReasonAwaitingAgent: the node's agent has not reported yet.
	ReasonAwaitingAgent = "AwaitingAgent"

	// EventInvalidDrainAnnotation: the Node's webfarm.io/drain annotation is
	// neither "true" nor "false"; the front keeps serving.
	EventInvalidDrainAnnotation = "InvalidDrainAnnotation"
	// EventNoNodeAddress: the Node has no IP address, so it cannot be a front.
	EventNoNodeAddress = "NoNodeAddress"
	// EventFrontActive, EventFrontDraining, EventFrontDrained, EventFrontDown:
	// a FrontNode entered that phase.
	EventFrontActive   = "Active"
	EventFrontDraining = "Draining"
	EventFrontDrained  = "Drained"
	EventFrontDown     = "Down"
	// EventOwnerChanged: a FailoverIP got a new owner (or none) at a new epoch.
	EventOwnerChanged = "OwnerChanged"
	// EventReleaseRequested: the owner is asked to release the address for a
	// planned hand-off.
	EventReleaseRequested = "ReleaseRequested"
	// EventAwaitingFence: the owner went silent; the address moves once it
	// must have stopped announcing.
	EventAwaitingFence = "AwaitingFence"
	// EventNoCandidate: no front may hold the address.
	EventNoCandidate = "NoCandidate"
	// EventConflict: another FailoverIP has the same address.
	EventConflict = "Conflict"
	// EventOwnershipWithdrawn: the owner of a FailoverIP being deleted or in
	// conflict lost it at a new epoch, with nobody in its place.
	EventOwnershipWithdrawn = "OwnershipWithdrawn"
	// EventAddressRemoved: a deleted FailoverIP's address is held nowhere;
	// its finalizer is removed.
	EventAddressRemoved = "AddressRemoved"
)

// Condition types of a FrontNode beyond Ready.
const (
	// ConditionProxyHealthy is True while the node's HAProxy runs the wanted
	// configuration.
	ConditionProxyHealthy = "ProxyHealthy"
)

// Event actions (events.k8s.io/v1 requires one): what the controller did.
const (
	actionReconcile = "Reconcile"
	actionElect     = "Elect"
	actionWithdraw  = "Withdraw"
)
