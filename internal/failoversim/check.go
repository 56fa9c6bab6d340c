package failoversim

import (
	"strings"
	"time"
)

// checker looks at every instant where something happened — every event,
// every gate expiry — and records the first instant two nodes answered for
// the address, how long two or more did in all, and the first instant
// after calmAt that one did. Between two such instants nothing changes.
type checker struct {
	last, count int64
	// first is the first instant of two answerers, -1 if none; who names
	// them.
	first int64
	who   string
	// overlap is the total time two or more nodes answered.
	overlap time.Duration
	// calmAt is when the liveness clock starts (-1: never); answeredAt
	// the first instant at or after it that a node answered.
	calmAt, answeredAt int64
	// stretch is when the nodes last started answering without a gap;
	// -1 while none answers.
	stretch int64
}

func (c *checker) init(*World) { c.first, c.calmAt, c.answeredAt, c.stretch = -1, -1, -1, -1 }

func (c *checker) instant(w *World) {
	if c.count > 1 {
		c.overlap += time.Duration(w.now - c.last)
	}
	n := w.answeringCount()
	c.count, c.last = int64(n), w.now
	if n > 1 && c.first < 0 {
		c.first, c.who = w.now, strings.Join(w.answering(), " and ")
		w.tracef("VIOLATION: %s answer for %s together", c.who, Address)
	}
	if n > 0 && c.calmAt >= 0 && w.now >= c.calmAt && c.answeredAt < 0 {
		c.answeredAt = w.now
	}
	switch {
	case n == 0:
		c.stretch = -1
	case c.stretch < 0:
		c.stretch = w.now
	}
}

// answeringSince is when the current stretch of some node answering began;
// false while none answers.
func (w *World) answeringSince() (time.Duration, bool) {
	return time.Duration(w.check.stretch), w.check.stretch >= 0
}

// answering names the nodes that answer for the address now.
func (w *World) answering() []string {
	var names []string
	for _, a := range w.agents {
		if a.answers() {
			names = append(names, a.name)
		}
	}
	return names
}

// answeringCount is len(w.answering()), at every instant, without the
// names.
func (w *World) answeringCount() int {
	n := 0
	for _, a := range w.agents {
		if a.answers() {
			n++
		}
	}
	return n
}

func (a *agent) answers() bool { return a.powered && a.kernel.answering(a.w.cfg.Gate, a.w.now) }

// Violation is the first instant two nodes answered together, and which.
func (w *World) Violation() (time.Duration, string, bool) {
	return time.Duration(w.check.first), w.check.who, w.check.first >= 0
}

// Overlap is how long, in all, two or more nodes answered together.
func (w *World) Overlap() time.Duration { return w.check.overlap }

// answeredSince is the first instant at or after t that a node answered,
// once watchFrom(t) was called before t; false if none did yet.
func (w *World) answeredSince() (time.Duration, bool) {
	return time.Duration(w.check.answeredAt), w.check.answeredAt >= 0
}

// watchFrom starts the liveness clock at t.
func (w *World) watchFrom(t time.Duration) {
	w.at(int64(t), "liveness clock starts", func() { w.check.calmAt = int64(t) })
}
