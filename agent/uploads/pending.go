package uploads

import (
	"maps"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

// pending are the paths changed here and not yet settled. A path whose
// last event ended a write (close_write, or the rename that ends a
// write-then-rename: complete) settles once no event touched it for a
// short while, soon; a file written and not closed yet (open) once its
// writer closes it, or no process holds it open for writing any more
// (looked at once its writer has been silent for a quiet period, and
// every quiet period after: writers.go), or it has been silent for
// openQuiet quiet periods; any other once no event touched it for the
// quiet period. A writer that
// keeps writing keeps it pending. soon is not zero: a file's time set
// right after its content (tar, curl -R) arrives within it, and goes with
// the content rather than as a second, older version that would lose to
// the first (Wins).
type pending map[string]change

type change struct {
	first, last    time.Time
	complete, open bool
	// looked is when an open file's writers were last looked for;
	// blind is set where they cannot be (writers.go).
	looked time.Time
	blind  bool
	// wrote is set by a write into the name itself; placed by a change
	// that rsync's daemon may have made: a name renamed into place or
	// made other than by open, removed, or found in a new directory.
	wrote, placed bool
}

// writtenHere tells whether only a process writing here made c: the
// name was written into, and nothing else was done to it but changes of
// its attributes. No session of the daemon made it (mayBeLocal).
func (c change) writtenHere() bool { return c.wrote && !c.placed }

// openQuiet, in quiet periods, is how long a file still open for writing
// waits for its writer to close it: 60 s by default. An upload written
// slowly, its writer silent for more than a quiet period between two
// writes, went half written to the peers, where readers saw it. A writer
// silent for longer has the file sent as it is; one that keeps writing
// keeps it pending.
const openQuiet = 600

// touch records an event of path at now; complete when it ended a write.
func (p pending) touch(path string, now time.Time, complete bool) {
	c, ok := p[path]
	if !ok {
		c.first = now
	}
	c.last, c.complete = now, complete
	p[path] = c
}

// writing records whether a writer may still hold path open: it wrote,
// or made the file; it no longer does once the write ended or the name
// went. Other events leave it as it was. A write that ends dates the
// change: a long upload is neither counted as lag (oldest) nor as a
// propagation that took as long.
func (p pending) writing(path string, ev event) {
	c, ok := p[path]
	if !ok {
		return
	}
	switch {
	case ev.complete || ev.gone:
		if c.open && ev.complete {
			c.first = c.last
		}
		c.open = false
	case ev.writing:
		c.open = true
	}
	p[path] = c
}

// made records what kind of change ev made to path (change.wrote,
// change.placed); a change of attributes alone is neither.
func (p pending) made(path string, ev event) {
	c, ok := p[path]
	if !ok {
		return
	}
	switch {
	case ev.inPlace:
		c.wrote = true
	case ev.Op != fsnotify.Chmod:
		c.placed = true
	}
	p[path] = c
}

// found records that path was found in a new directory, not seen made.
func (p pending) found(path string) {
	if c, ok := p[path]; ok {
		c.placed = true
		p[path] = c
	}
}

// opened records that a writer holds path open (writers.go).
func (p pending) opened(path string) {
	if c, ok := p[path]; ok {
		c.open = true
		p[path] = c
	}
}

// due is when c settles.
func (c change) due(quiet, soon time.Duration) time.Time {
	switch {
	case c.complete:
		return c.last.Add(soon)
	case c.open:
		return c.last.Add(openQuiet * quiet)
	}
	return c.last.Add(quiet)
}

// lookAt is when an open file's writers are next looked for: once the
// quiet period passed since its last event, and since the last look;
// zero when c is not open.
func (c change) lookAt(quiet time.Duration) time.Time {
	if !c.open || c.blind {
		return time.Time{}
	}
	if c.looked.After(c.last) {
		return c.looked.Add(quiet)
	}
	return c.last.Add(quiet)
}

// wake is when c next needs the loop: it settles, or is looked at.
func (c change) wake(quiet, soon time.Duration) time.Time {
	return earliest(c.due(quiet, soon), c.lookAt(quiet))
}

// silent returns the open paths to look at by now, each with its last
// event.
func (p pending) silent(now time.Time, quiet time.Duration) map[string]time.Time {
	out := map[string]time.Time{}
	for path, c := range p {
		if at := c.lookAt(quiet); !at.IsZero() && !now.Before(at) {
			out[path] = c.last
		}
	}
	return out
}

// looked records what a look at path's writers at now found, unless an
// event touched it since its last one, last: still written, it is looked
// at again a quiet period later; not written, its write ended, as at a
// close_write; unknown (writers.go), it waits out openQuiet.
func (p pending) looked(path string, last, now time.Time, written, known bool) {
	c, ok := p[path]
	if !ok || !c.last.Equal(last) || !c.open {
		return
	}
	switch {
	case !known:
		c.blind = true
	case written:
		c.looked = now
	default:
		c.open, c.complete, c.first = false, true, c.last
	}
	p[path] = c
}

// settled removes and returns the paths that settled by now, with their
// changes.
func (p pending) settled(now time.Time, quiet, soon time.Duration) map[string]change {
	out := map[string]change{}
	for path, c := range p {
		if !now.Before(c.due(quiet, soon)) {
			out[path] = c
			delete(p, path)
		}
	}
	return out
}

// next is when the loop is next needed for a path; zero when none is
// pending.
func (p pending) next(quiet, soon time.Duration) time.Time {
	var t time.Time
	for _, c := range p {
		t = earliest(t, c.wake(quiet, soon))
	}
	return t
}

// oldest is when the oldest change not still being written happened: a
// long upload under way is no lag (spec.uploads.maxLag, 30 s by default).
func (p pending) oldest() time.Time {
	var t time.Time
	for _, c := range p {
		if c.open {
			continue
		}
		if t.IsZero() || c.first.Before(t) {
			t = c.first
		}
	}
	return t
}

// sortedKeys is the paths of m in order: parents before what they hold.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
