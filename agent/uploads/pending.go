package uploads

import (
	"maps"
	"slices"
	"time"
)

// pending are the paths changed here and not yet settled. A path whose
// last event ended a write (close_write, or the rename that ends a
// write-then-rename: complete) settles once no event touched it for a
// short while, soon; any other once none did for the quiet period. A
// writer that keeps writing keeps it pending. soon is not zero: a file's
// time set right after its content (tar, curl -R) arrives within it, and
// goes with the content rather than as a second, older version that
// would lose to the first (Wins).
type pending map[string]change

type change struct {
	first, last time.Time
	complete    bool
}

// touch records an event of path at now; complete when it ended a write.
func (p pending) touch(path string, now time.Time, complete bool) {
	c, ok := p[path]
	if !ok {
		c.first = now
	}
	c.last, c.complete = now, complete
	p[path] = c
}

// due is when c settles.
func (c change) due(quiet, soon time.Duration) time.Time {
	if c.complete {
		return c.last.Add(soon)
	}
	return c.last.Add(quiet)
}

// settled removes and returns the paths that settled by now, with when
// each first changed.
func (p pending) settled(now time.Time, quiet, soon time.Duration) map[string]time.Time {
	out := map[string]time.Time{}
	for path, c := range p {
		if !now.Before(c.due(quiet, soon)) {
			out[path] = c.first
			delete(p, path)
		}
	}
	return out
}

// next is when the next path settles; zero when none is pending.
func (p pending) next(quiet, soon time.Duration) time.Time {
	var t time.Time
	for _, c := range p {
		if at := c.due(quiet, soon); t.IsZero() || at.Before(t) {
			t = at
		}
	}
	return t
}

func (p pending) oldest() time.Time {
	var t time.Time
	for _, c := range p {
		if t.IsZero() || c.first.Before(t) {
			t = c.first
		}
	}
	return t
}

// sortedKeys is the paths of m in order: parents before what they hold.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
