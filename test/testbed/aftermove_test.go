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
		inGap, after int
	}{
		{"nothing failed", []Sample{ok(0), ok(10), ok(20)}, 0, 0},
		{"a failure before the act is neither", []Sample{ko(0), ok(10), ok(20)}, 0, 0},
		{"a failure during the act is in the gap", []Sample{ko(3), ok(10), ok(20)}, 1, 0},
		{"the gap, then served", []Sample{ok(0), ko(10), ko(20), ok(30), ok(40)}, 2, 0},
		{"the gap, then a dead front's share", []Sample{ko(10), ko(20), ok(30), ko(40), ok(50), ko(60)}, 2, 2},
		{"never served again", []Sample{ok(0), ko(10), ko(20)}, 2, 0},
		{"the act's own instant belongs to the gap", []Sample{ko(5), ok(30)}, 1, 0},
		{"an answer during the act is not the new holder's", []Sample{ok(2), ko(3), ko(4), ok(30), ko(40)}, 2, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inGap, after, _ := moveFailures(LoadResult{Samples: tc.samples}, at(1), at(5))
			if inGap != tc.inGap || after != tc.after {
				t.Errorf("moveFailures = %d in the gap, %d after; want %d, %d", inGap, after, tc.inGap, tc.after)
			}
		})
	}
}
