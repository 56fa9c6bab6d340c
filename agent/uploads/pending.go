package uploads

import (
	"maps"
	"slices"
	"time"
)

// pending are the paths changed here and not yet settled: a path is
// propagated once no event touched it for the quiet period. A writer that
// keeps writing keeps it pending; a finished upload (close_write, or the
// rename that ends a write-then-rename) settles one quiet period later.
type pending map[string]change

type change struct{ first, last time.Time }

func (p pending) touch(path string, now time.Time) {
	c, ok := p[path]
	if !ok {
		c.first = now
	}
	c.last = now
	p[path] = c
}

// settled removes and returns the paths untouched for quiet, sorted, with
// when each first changed.
func (p pending) settled(now time.Time, quiet time.Duration) map[string]time.Time {
	out := map[string]time.Time{}
	for path, c := range p {
		if now.Sub(c.last) >= quiet {
			out[path] = c.first
			delete(p, path)
		}
	}
	return out
}

// next is when the next path settles; zero when none is pending.
func (p pending) next(quiet time.Duration) time.Time {
	var t time.Time
	for _, c := range p {
		if at := c.last.Add(quiet); t.IsZero() || at.Before(t) {
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
