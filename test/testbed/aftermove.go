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

// moveFailures splits the failed requests sent from started on at the
// first one answered after done (the new holder's first answer, when the
// act that began at started and ended at done lost the holder): those
// inside the gap, and those after it, which a dead front still taking
// clients would cause; and when that first answer was sent (zero if none).
func moveFailures(res LoadResult, started, done time.Time) (inGap, after int, first time.Time) {
	for _, s := range res.Samples {
		if s.OK() && !s.Start.Before(done) {
			first = s.Start
			break
		}
	}
	if first.IsZero() {
		return res.FailedBetween(started, time.Time{}), 0, first
	}
	return res.FailedBetween(started, first), res.FailedBetween(first, time.Time{}), first
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
