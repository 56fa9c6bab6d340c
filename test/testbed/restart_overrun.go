package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// decision is a decision an agent logged about a failover address.
type decision struct {
	at     time.Time
	action string
	reason string
}

func (d decision) String() string {
	if d.at.IsZero() {
		return ""
	}
	return fmt.Sprintf("%s at %s %s", d.action, d.at.UTC().Format("15:04:05.000"), d.reason)
}

// firstDecision reads the first decision that the agent's log at path holds
// from offset on.
func firstDecision(path string, offset int64) (decision, bool) {
	var first decision
	found := false
	scanLog(path, offset, func(raw []byte) bool {
		var line struct{ Ts, Msg, Action, Reason string }
		if json.Unmarshal(raw, &line) != nil || line.Msg != "Decided" {
			return true
		}
		at, err := time.Parse(time.RFC3339Nano, line.Ts)
		if err != nil {
			return true
		}
		first, found = decision{at: at, action: line.Action, reason: line.Reason}, true
		return false
	})
	return first, found
}

// earliestGrantEnd is how soon after a kill the grant of the killed owner
// may run out: deadtime less guard after its last proof of life, which
// came at most a keepalive before the kill. Past it, the deadman gate may
// have taken the address off the link, and the restarted owner may have
// to give it up for want of a proof: a single holder, kept, at a cost.
func (s WebfarmSettings) earliestGrantEnd() time.Duration {
	return s.Deadtime - s.Guard - s.Keepalive
}

// restartOverran checks an agent restart whose first decision came late
// enough for the grant of its predecessor to have run out, as on a loaded
// machine: the address lapsed or moved, safely. Never did two fronts
// answer ARP for it, and one front holds it afterwards. Requests may fail
// meanwhile; they are counted, not checked.
func (tb *Testbed) restartOverran(ctx context.Context, r *Result, late time.Duration, res LoadResult, arp *ARPWatcher) error {
	tb.say("   the new agent decided first %s after the kill, when the grant may have run out (%s at the earliest): a machine this loaded may lose the VIP for a moment; %d of %d requests failed",
		round(late), WebfarmDefaults.earliestGrantEnd(), res.Failed(), len(res.Samples))
	holder, err := tb.waitNewHolder(ctx, "")
	if err != nil {
		holder = err.Error()
	}
	if err := r.check(err == nil, "one front holds the VIP afterwards", "%s", holder); err != nil {
		return err
	}
	return checkSingleAnswerer(r, arp)
}
