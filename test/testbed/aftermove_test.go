package testbed

import (
	"testing"
	"time"
)

func TestMoveFailures(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ok := func(ms int) Sample { return Sample{Start: at(ms), Status: 200, Front: "front2"} }
	ko := func(ms int) Sample { return Sample{Start: at(ms), Err: "timeout"} }
	cases := []struct {
		name         string
		samples      []Sample
		moved        time.Time
		inGap, after int
	}{
		{"nothing failed", []Sample{ok(0), ok(10), ok(20)}, at(10), 0, 0},
		{"a failure before the act is neither", []Sample{ko(0), ok(10), ok(20)}, at(10), 0, 0},
		{"the gap, then served", []Sample{ok(0), ko(10), ko(20), ok(30), ok(40)}, at(30), 2, 0},
		{"the gap, then a dead front's share", []Sample{ko(10), ko(20), ok(30), ko(40), ok(50), ko(60)}, at(25), 2, 2},
		{"never moved", []Sample{ok(0), ko(10), ko(20)}, time.Time{}, 2, 0},
		{"the act's own instant belongs to the gap", []Sample{ko(5), ok(30)}, at(30), 1, 0},
		{"the claim's own instant is after", []Sample{ko(5), ko(30), ok(40)}, at(30), 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inGap, after := moveFailures(LoadResult{Samples: tc.samples}, at(5), tc.moved)
			if inGap != tc.inGap || after != tc.after {
				t.Errorf("moveFailures = %d in the gap, %d after; want %d, %d", inGap, after, tc.inGap, tc.after)
			}
		})
	}
}

func TestFirstClaim(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	ev := func(ms int, front string) ARPEvent {
		return ARPEvent{Time: t0.Add(time.Duration(ms) * time.Millisecond), Front: front}
	}
	events := []ARPEvent{ev(0, "b"), ev(100, "a"), ev(200, "a"), ev(300, ""), ev(400, "b")}
	if got := firstClaim(events, "a", t0.Add(50*time.Millisecond)); !got.Equal(t0.Add(300 * time.Millisecond)) {
		t.Errorf("firstClaim = %s, want the unknown MAC at 300ms", got.Sub(t0))
	}
	if got := firstClaim(events, "a", t0.Add(time.Second)); !got.IsZero() {
		t.Errorf("firstClaim after every event = %s, want zero", got.Sub(t0))
	}
}
