package serving

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/webfarm/webfarm/agent/risefall"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// Observation is what one round of probes saw for one FailoverIP.
type Observation struct {
	// Link is the error of the link check; nil when the link is up.
	Link error
	// Proxy holds the error of each farm frontend's check, by port.
	Proxy map[int32]error
	// Pings holds the error of each ping target, in spec order; empty when
	// the FailoverIP lists none.
	Pings []error
}

// Check is the verdict of one round.
type Check struct {
	OK      bool
	Reason  string
	Message string
}

// Evaluate is the verdict of one round: the link must be up, every
// frontend must answer, and when there are ping targets at least one must
// answer — Heartbeat's ipfail ping group, which is lost only when all of its
// members are, so that one target's maintenance moves nothing. The link
// comes first: when it is down, the others fail because of it.
func Evaluate(o Observation) Check {
	if o.Link != nil {
		return Check{Reason: webfarmv1.ServingReasonLinkDown, Message: o.Link.Error()}
	}
	for _, port := range slices.Sorted(maps.Keys(o.Proxy)) {
		if err := o.Proxy[port]; err != nil {
			return Check{Reason: webfarmv1.ServingReasonProxyNotAnswering, Message: fmt.Sprintf("frontend port %d: %v", port, err)}
		}
	}
	if len(o.Pings) > 0 && !anyAnswered(o.Pings) {
		return Check{Reason: webfarmv1.ServingReasonPingTargetsUnreachable, Message: fmt.Sprintf("none of %d ping targets answered; first: %v", len(o.Pings), o.Pings[0])}
	}
	return Check{OK: true, Reason: webfarmv1.ServingReasonServing}
}

func anyAnswered(pings []error) bool {
	for _, err := range pings {
		if err == nil {
			return true
		}
	}
	return false
}

// Verdict is whether a node serves one FailoverIP, after hysteresis.
type Verdict struct {
	Serving bool
	Reason  string
	Message string
	// Since is when Serving last changed, or when tracking began.
	Since time.Time
}

// Tracker applies keepalived's track_script hysteresis to the checks of one
// FailoverIP: Fall failures in a row stop serving, Rise successes in a row
// serve again; a result against the trend resets the count. It starts
// serving, as a FailoverIP the agent has not reported on counts as served:
// a restarting agent must not move an address on its first failed check.
type Tracker struct {
	Rise, Fall int

	started bool
	verdict Verdict
	row     risefall.Counter
}

// Observe records the check of one round at now, and tells whether the
// verdict changed — in serving, or in the reason of not serving.
func (t *Tracker) Observe(c Check, now time.Time) (Verdict, bool) {
	if !t.started {
		t.started = true
		t.verdict = Verdict{Serving: true, Reason: webfarmv1.ServingReasonServing, Since: now}
	}
	trend := t.row.Observe(c.OK, t.Rise, t.Fall)
	if c.OK == t.verdict.Serving {
		// Only a new reason is news: a message that varies from round to
		// round within one reason would write the status every round.
		if c.OK || c.Reason == t.verdict.Reason {
			return t.verdict, false
		}
		t.verdict.Reason, t.verdict.Message = c.Reason, c.Message
		return t.verdict, true
	}
	if trend == risefall.Hold {
		return t.verdict, false
	}
	t.verdict = Verdict{Serving: c.OK, Reason: c.Reason, Message: c.Message, Since: now}
	return t.verdict, true
}
