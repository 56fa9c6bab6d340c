package uploads

import (
	"slices"
	"testing"
	"time"
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
	if len(got) != 1 || !got["b"].Equal(t0.Add(50*time.Millisecond)) {
		t.Fatalf("settled = %v, want b", got)
	}
	if !p.oldest().Equal(t0) {
		t.Errorf("oldest = %v, want the first write of a", p.oldest())
	}
	got = p.settled(t0.Add(180*time.Millisecond), quiet, soon)
	if len(got) != 1 || !got["a"].Equal(t0) || len(p) != 0 {
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
	if got := p.settled(t0.Add(11*time.Millisecond), quiet, soon); len(got) != 1 || !got["closed"].Equal(t0) {
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
	if got := p.settled(t0.Add(10*quiet), quiet, soon); len(got) != 1 || !got["deleted"].Equal(t0) {
		t.Fatalf("settled = %v, want deleted alone", got)
	}
	if !p.oldest().IsZero() {
		t.Errorf("oldest = %v: a write under way is no lag", p.oldest().Sub(t0))
	}
	p.touch("closed", t0.Add(20*quiet), true)
	p.writing("closed", event{complete: true})
	if got := p.settled(t0.Add(20*quiet+soon), quiet, soon); len(got) != 1 || !got["closed"].Equal(t0.Add(20*quiet)) {
		t.Fatalf("settled = %v, want closed alone, dated when its write ended", got)
	}
	if next := p.next(quiet, soon); !next.Equal(t0.Add(openQuiet * quiet)) {
		t.Errorf("the silent writer's file settles at %v, want %v", next.Sub(t0), openQuiet*quiet)
	}
}
