package testbed

import "time"

// afterMoveWatch is how long the steady load goes on after the address
// moved: as long as HAProxy's own checks take to find a dead front at the
// samples' settings (fall 3 × inter 2 s), so that a new owner still sending
// clients to the dead front shows in the figures.
const afterMoveWatch = 6 * time.Second

// answersFor is how many answered requests a load at rate gives in d.
func answersFor(rate int, d time.Duration) int {
	return int(int64(rate) * int64(d) / int64(time.Second))
}

// moveFailures splits the failed requests sent from acted on at the first
// one answered (the new holder's first answer): those inside the gap, and
// those after it, which a dead front still taking clients would cause.
func moveFailures(res LoadResult, acted time.Time) (inGap, after int) {
	first := time.Time{}
	for _, s := range res.Samples {
		if s.OK() && !s.Start.Before(acted) {
			first = s.Start
			break
		}
	}
	if first.IsZero() {
		return res.FailedBetween(acted, time.Time{}), 0
	}
	return res.FailedBetween(acted, first), res.FailedBetween(first, time.Time{})
}
