package v1alpha1

import "time"

// The agent's serving checks (FrontNode status.serving), with keepalived's
// track_script meaning: every ServingCheckInterval each check runs, bounded
// by ServingCheckTimeout; ServingFall failures in a row make a node stop
// serving a FailoverIP, ServingRise successes in a row make it serve again.
// Worst case, a node whose HAProxy is gone (refused) or whose link is down
// is reported after ServingFall × ServingCheckInterval plus one timeout; one
// whose HAProxy accepts but stays silent after ServingFall timeouts.
//
// The timeout is a second, not a fraction of the interval: a HAProxy that
// merely runs behind its machine's load answers late, and every front's
// does at once. At 200 ms, two CPU hogs and a loaded build had the checks
// of all three fronts fail by turns, and the address went from front to
// front 28 times in three minutes (soak-failover), while keepalived beside
// it never moved. A client waits that long too before it gives up.
const (
	ServingCheckInterval = 250 * time.Millisecond
	ServingCheckTimeout  = time.Second
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
