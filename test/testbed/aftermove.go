package testbed

import (
	"fmt"
	"strings"
	"time"
)

// afterMoveWatch is how long the steady load goes on after the address
// moved: as long as HAProxy's own checks take to find a dead front at the
// samples' settings (fall 3 × inter 2 s), so that a new owner still sending
// clients to the dead front shows in the figures.
const afterMoveWatch = 6 * time.Second

// answersFor is how many answered requests a load at rate gives in d.
func answersFor(rate int, d time.Duration) int {
	return int(int64(rate) * int64(d) / int64(time.Second))
}

// moveFailures splits the failed requests sent from started on, when an
// act began that lost the address's holder, at moved, when the new holder
// first claimed the address (firstClaim; zero if none did): those inside
// the gap, and those after it, which a dead front still taking clients
// would cause.
func moveFailures(res LoadResult, started, moved time.Time) (inGap, after int) {
	if moved.IsZero() {
		return res.FailedBetween(started, time.Time{}), 0
	}
	return res.FailedBetween(started, moved), res.FailedBetween(moved, time.Time{})
}

// firstClaim is when a front other than from first claimed the address
// after since, as the client saw it (its ARP cache follows the same
// announcements); zero if none did. The events are in capture order.
func firstClaim(events []ARPEvent, from string, since time.Time) time.Time {
	for _, e := range events {
		if e.Front != from && e.Time.After(since) {
			return e.Time
		}
	}
	return time.Time{}
}

// failuresSince describes up to n failed requests sent from t on: when,
// after t, and why, for the narration.
func failuresSince(res LoadResult, t time.Time, n int) string {
	var out []string
	for _, s := range res.Samples {
		if s.OK() || s.Start.Before(t) {
			continue
		}
		if len(out) == n {
			out = append(out, "...")
			break
		}
		why := s.Err
		if why == "" {
			why = fmt.Sprintf("%d from %q", s.Status, s.Front)
		}
		out = append(out, fmt.Sprintf("+%s (%s): %s", round(s.Start.Sub(t)), round(s.Latency), why))
	}
	return strings.Join(out, "; ")
}
