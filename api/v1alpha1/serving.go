package v1alpha1

import "time"

// The agent's serving checks (FrontNode status.serving), with keepalived's
// track_script meaning: every ServingCheckInterval each check runs, bounded
// by ServingCheckTimeout; ServingFall failures in a row make a node stop
// serving a FailoverIP, ServingRise successes in a row make it serve again.
// Worst case, a node that stops serving is reported after
// ServingFall × ServingCheckInterval plus one timeout.
const (
	ServingCheckInterval = 250 * time.Millisecond
	ServingCheckTimeout  = 200 * time.Millisecond
	ServingFall          = 3
	ServingRise          = 2
)

// ServingCheckPath is the path that every farm's HAProxy frontend answers
// itself (its monitor-uri), with no backend involved: the agent requests it
// on loopback to learn that the frontend accepts and serves.
const ServingCheckPath = "/.webfarm/serving"

// Reasons of FrontNode status.serving.
const (
	// ServingReasonServing: every check passes.
	ServingReasonServing = "Serving"
	// ServingReasonProxyNotAnswering: the node's HAProxy did not answer on a
	// farm's frontend.
	ServingReasonProxyNotAnswering = "ProxyNotAnswering"
	// ServingReasonLinkDown: the link that carries the address is down.
	ServingReasonLinkDown = "LinkDown"
	// ServingReasonPingTargetsUnreachable: none of the pingTargets answered.
	ServingReasonPingTargetsUnreachable = "PingTargetsUnreachable"
)
