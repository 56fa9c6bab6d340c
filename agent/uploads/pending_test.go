package uploads

import (
	"slices"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

func TestPendingSettlesAfterQuiet(t *testing.T) {
	t0 := time.Unix(1000, 0)
	quiet, soon := 100*time.Millisecond, 10*time.Millisecond
	p := pending{}
	p.touch("a", t0, false)
	p.touch("b", t0.Add(50*time.Millisecond), false)
	p.touch("a", t0.Add(80*time.Millisecond), false) // still being written

	if got := p.settled(t0.Add(120*time.Millisecond), quiet, soon); len(got) != 0 {
		t.Fatalf("settled too early: %v", got)
	}
	if next := p.next(quiet, soon); !next.Equal(t0.Add(150 * time.Millisecond)) {
		t.Errorf("next = %v", next.Sub(t0))
	}
	got := p.settled(t0.Add(150*time.Millisecond), quiet, soon)
	if len(got) != 1 || !got["b"].first.Equal(t0.Add(50*time.Millisecond)) {
		t.Fatalf("settled = %v, want b", got)
	}
	if !p.oldest().Equal(t0) {
		t.Errorf("oldest = %v, want the first write of a", p.oldest())
	}
	got = p.settled(t0.Add(180*time.Millisecond), quiet, soon)
	if len(got) != 1 || !got["a"].first.Equal(t0) || len(p) != 0 {
		t.Fatalf("settled = %v, left %v", got, p)
	}
	if !p.next(quiet, soon).IsZero() || !p.oldest().IsZero() {
		t.Error("an empty set has no next nor oldest")
	}
}

func TestPendingCompleteSettlesSoon(t *testing.T) {
	t0 := time.Unix(1000, 0)
	quiet, soon := 100*time.Millisecond, 10*time.Millisecond
	p := pending{}
	p.touch("closed", t0, false)
	p.touch("closed", t0.Add(time.Millisecond), true) // close_write
	p.touch("timed", t0, true)
	p.touch("timed", t0.Add(5*time.Millisecond), false) // its time set after
	if next := p.next(quiet, soon); !next.Equal(t0.Add(11 * time.Millisecond)) {
		t.Errorf("next = %v, want 11ms", next.Sub(t0))
	}
	if got := p.settled(t0.Add(11*time.Millisecond), quiet, soon); len(got) != 1 || !got["closed"].first.Equal(t0) {
		t.Fatalf("settled = %v, want closed, first changed at t0", got)
	}
	if got := p.settled(t0.Add(104*time.Millisecond), quiet, soon); len(got) != 0 {
		t.Fatalf("settled = %v: an event after the write's end waits the quiet period", got)
	}
	if got := p.settled(t0.Add(105*time.Millisecond), quiet, soon); len(got) != 1 {
		t.Fatalf("settled = %v, want timed", got)
	}
}

func TestOnlyHere(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lacks [][]string
		want  []string
	}{
		{name: "no peer answered", lacks: nil, want: nil},
		{name: "one peer", lacks: [][]string{{"b", "a"}}, want: []string{"a", "b"}},
		{name: "what one peer holds is shared", lacks: [][]string{{"a", "b"}, {"b"}}, want: []string{"b"}},
		{name: "the agent's own directory is no upload", lacks: [][]string{{MetaDir, MetaDir + "/deleted/x", "c"}}, want: []string{"c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := onlyHere(tc.lacks); !slices.Equal(got, tc.want) {
				t.Errorf("onlyHere(%v) = %v, want %v", tc.lacks, got, tc.want)
			}
		})
	}
}

// TestPendingWaitsForAnOpenWrite: a file written and not closed waits for
// its close, or openQuiet quiet periods of silence; an attribute change
// meanwhile does not end the write, a deletion does. A write that ends
// dates the change.
func TestPendingWaitsForAnOpenWrite(t *testing.T) {
	t0 := time.Unix(1000, 0)
	quiet, soon := 100*time.Millisecond, 2*time.Millisecond
	p := pending{}
	for _, path := range []string{"closed", "silent", "deleted"} {
		p.touch(path, t0, false)
		p.writing(path, event{writing: true})
	}
	p.touch("closed", t0.Add(time.Millisecond), false)
	p.writing("closed", event{}) // its mode changed: still open
	p.touch("deleted", t0.Add(time.Millisecond), false)
	p.writing("deleted", event{gone: true})
	if got := p.settled(t0.Add(10*quiet), quiet, soon); len(got) != 1 || !got["deleted"].first.Equal(t0) {
		t.Fatalf("settled = %v, want deleted alone", got)
	}
	if !p.oldest().IsZero() {
		t.Errorf("oldest = %v: a write under way is no lag", p.oldest().Sub(t0))
	}
	p.touch("closed", t0.Add(20*quiet), true)
	p.writing("closed", event{complete: true})
	if got := p.settled(t0.Add(20*quiet+soon), quiet, soon); len(got) != 1 || !got["closed"].first.Equal(t0.Add(20*quiet)) {
		t.Fatalf("settled = %v, want closed alone, dated when its write ended", got)
	}
	if next := p.next(quiet, soon); !next.Equal(t0.Add(quiet)) {
		t.Errorf("the silent writer's file is next looked at %v, want %v", next.Sub(t0), quiet)
	}
	if got := p.settled(t0.Add(openQuiet*quiet-time.Millisecond), quiet, soon); len(got) != 0 {
		t.Errorf("settled = %v before openQuiet, with no look", got)
	}
	if got := p.settled(t0.Add(openQuiet*quiet), quiet, soon); len(got) != 1 {
		t.Errorf("settled = %v, want the silent writer's file after openQuiet", got)
	}
}

// TestPendingLooksForWriters: a file open for writing whose writer has
// been silent for a quiet period is looked at (writers.go), and every
// quiet period after while it is still written; one no process writes any
// more settles as if closed, dated then; one the kernel cannot tell of
// waits out openQuiet; a look that an event overtook counts for nothing.
func TestPendingLooksForWriters(t *testing.T) {
	t0 := time.Unix(1000, 0)
	quiet, soon := 100*time.Millisecond, 2*time.Millisecond
	p := pending{}
	for _, path := range []string{"written", "ended", "unknown", "overtaken"} {
		p.touch(path, t0, false)
		p.opened(path)
	}
	if got := p.silent(t0.Add(quiet-time.Millisecond), quiet); len(got) != 0 {
		t.Fatalf("looked at %v before a quiet period of silence", got)
	}
	at := t0.Add(quiet)
	if got := p.silent(at, quiet); len(got) != 4 {
		t.Fatalf("silent = %v, want all four", got)
	}
	p.touch("overtaken", at, false)
	p.looked("written", t0, at, true, true)
	p.looked("ended", t0, at, false, true)
	p.looked("unknown", t0, at, false, false)
	p.looked("overtaken", t0, at, false, true)
	got := p.settled(at.Add(soon), quiet, soon)
	if len(got) != 1 || !got["ended"].first.Equal(t0) {
		t.Fatalf("settled = %v, want ended alone, dated at its last write", got)
	}
	if got := p.silent(at.Add(quiet), quiet); len(got) != 2 || got["written"].IsZero() || got["overtaken"].IsZero() {
		t.Errorf("looked at %v a quiet period later, want written and overtaken (still open)", got)
	}
	p.looked("written", t0, at.Add(quiet), true, true)
	if next := p["unknown"].wake(quiet, soon); !next.Equal(t0.Add(openQuiet * quiet)) {
		t.Errorf("a file whose writers cannot be looked for wakes at %v, want openQuiet", next.Sub(t0))
	}
	if next := p["written"].wake(quiet, soon); !next.Equal(at.Add(2 * quiet)) {
		t.Errorf("a file still written is next looked at %v, want a quiet period after the last look", next.Sub(t0))
	}
}

// TestPendingTellsWhatWasWrittenHere: only a path whose name was written
// into, with nothing else done to it but changes of attributes, was
// certainly not made by a session of rsync's daemon, which writes aside
// and renames into place.
func TestPendingTellsWhatWasWrittenHere(t *testing.T) {
	var (
		written   = event{Event: fsnotify.Event{Op: fsnotify.Write}, inPlace: true, writing: true}
		closed    = event{Event: fsnotify.Event{Op: fsnotify.Write}, inPlace: true, complete: true}
		chmod     = event{Event: fsnotify.Event{Op: fsnotify.Chmod}}
		renamedIn = event{Event: fsnotify.Event{Op: fsnotify.Create}, complete: true}
		removed   = event{Event: fsnotify.Event{Op: fsnotify.Remove}, gone: true}
	)
	for _, tc := range []struct {
		name   string
		events []event
		found  bool
		want   bool
	}{
		{"written and closed", []event{written, closed}, false, true},
		{"written, then its mode set", []event{written, closed, chmod}, false, true},
		{"renamed into place", []event{renamedIn}, false, false},
		{"written, then replaced by a rename", []event{written, closed, renamedIn}, false, false},
		{"renamed into place, then written", []event{renamedIn, written, closed}, false, false},
		{"removed", []event{removed}, false, false},
		{"its mode set alone", []event{chmod}, false, false},
		{"found in a new directory", nil, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pending{}
			t0 := time.Now()
			for _, ev := range tc.events {
				p.touch("f", t0, ev.complete)
				p.made("f", ev)
			}
			if tc.found {
				p.touch("f", t0, true)
				p.found("f")
			}
			if got := p["f"].writtenHere(); got != tc.want {
				t.Errorf("writtenHere = %v, want %v", got, tc.want)
			}
		})
	}
}
