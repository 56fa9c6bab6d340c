package deadfront

import (
	"testing"
	"time"
)

// TestStops follows one front through the rounds of the dead-front loop.
func TestStops(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	heardAt := func(d time.Duration) []Heard { return []Heard{{at(d), 2 * time.Second}} }
	type round struct {
		now          time.Duration
		shuttingDown bool
		heard        []Heard
		stopped      bool
	}
	cases := []struct {
		name   string
		rounds []round
	}{
		{"never shut down", []round{{0, false, heardAt(0), false}, {5 * time.Second, false, heardAt(0), false}}},
		{"an agent restart: stopped from the report until its successor's first heartbeat", []round{
			{0, false, heardAt(0), false},
			{100 * time.Millisecond, true, heardAt(0), true},
			{3 * time.Second, true, heardAt(0), true},
			// The successor reports before its first heartbeat arrives.
			{6 * time.Second, false, heardAt(0), true},
			{6100 * time.Millisecond, false, heardAt(6050 * time.Millisecond), false},
		}},
		{"heard while shutting down: stopped from then on", []round{
			{0, true, heardAt(0), true},
			{500 * time.Millisecond, true, heardAt(400 * time.Millisecond), true},
			{5 * time.Second, false, heardAt(400 * time.Millisecond), true},
			{5100 * time.Millisecond, false, heardAt(5050 * time.Millisecond), false},
		}},
		{"a crash says nothing: silent, never shutting down", []round{
			{0, false, heardAt(0), false}, {5 * time.Second, false, heardAt(0), false}}},
		{"never heard, shutting down", []round{{0, true, nil, true}, {time.Second, false, nil, true}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s Stops
			for i, r := range tc.rounds {
				if got := s.Stopped("front2", r.shuttingDown, r.heard, at(r.now)); got != r.stopped {
					t.Fatalf("round %d at %s: Stopped = %t, want %t", i, r.now, got, r.stopped)
				}
			}
		})
	}
}
