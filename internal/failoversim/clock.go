package failoversim

import "time"

// epoch is what every clock reads at global time zero, before its offset.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// driftClock is one machine's monotonic clock: it runs ppm parts per
// million faster (or slower) than global time and starts at an offset.
// It implements k8s.io/utils/clock.PassiveClock for the controller's
// HeartbeatTracker.
type driftClock struct {
	w      *World
	offset int64
	ppm    int64
}

func (c *driftClock) local(t int64) int64 { return c.offset + t + t*c.ppm/1_000_000 }

// Now is the clock's reading at the current global time.
func (c *driftClock) Now() time.Time { return epoch.Add(time.Duration(c.local(c.w.now))) }

// Since is how long ago t was by this clock.
func (c *driftClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// globalAt is the first global instant at which the clock reads at least
// local, so that a timer never fires early and a gate never closes early.
func (c *driftClock) globalAt(local time.Time) int64 {
	l := int64(local.Sub(epoch)) - c.offset
	den := int64(1_000_000 + c.ppm)
	t := l / den * 1_000_000
	t += (l % den) * 1_000_000 / den
	for c.local(t) < l+c.offset {
		t++
	}
	for t > 0 && c.local(t-1) >= l+c.offset {
		t--
	}
	return t
}
