package deadfront

import (
	"testing"
	"time"
)

func TestDead(t *testing.T) {
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	const deadtime = 2 * time.Second
	cases := []struct {
		name  string
		front Front
		dead  bool
	}{
		{"never heard, not Down: this node may have just started", Front{}, false},
		{"Down, never heard", Front{Down: true}, true},
		{"Down but heard just now: its Lease only lost the API server", Front{Down: true, Heard: []Heard{{ago(0), deadtime}}}, false},
		{"Down and silent", Front{Down: true, Heard: []Heard{{ago(deadtime + time.Millisecond), deadtime}}}, true},
		{"heard within deadtime", Front{Heard: []Heard{{ago(deadtime - time.Millisecond), deadtime}}}, false},
		{"silent exactly deadtime", Front{Heard: []Heard{{ago(deadtime), deadtime}}}, false},
		{"silent beyond deadtime", Front{Heard: []Heard{{ago(deadtime + time.Millisecond), deadtime}}}, true},
		{"silent on one address, heard on another", Front{Heard: []Heard{
			{ago(time.Minute), deadtime}, {ago(100 * time.Millisecond), deadtime}}}, false},
		{"silent beyond each address's own deadtime", Front{Heard: []Heard{
			{ago(400 * time.Millisecond), 300 * time.Millisecond}, {ago(3 * time.Second), deadtime}}}, true},
		{"beyond the short deadtime, not the long one", Front{Heard: []Heard{
			{ago(time.Second), 300 * time.Millisecond}, {ago(time.Second), deadtime}}}, false},
		{"unknown deadtime judges nothing", Front{Heard: []Heard{{ago(time.Hour), 0}}}, false},
		{"draining and silent: the checks decide", Front{Draining: true, Heard: []Heard{{ago(time.Minute), deadtime}}}, false},
		{"draining and Down: the checks decide", Front{Draining: true, Down: true}, false},
		{"its agent stopped and silent: the checks decide", Front{Stopped: true, Heard: []Heard{{ago(time.Minute), deadtime}}}, false},
		{"its agent stopped, Down: the checks decide", Front{Stopped: true, Down: true, Heard: []Heard{{ago(time.Minute), deadtime}}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dead, why := Dead(tc.front, now)
			if dead != tc.dead {
				t.Fatalf("Dead = %t (%q), want %t", dead, why, tc.dead)
			}
			if dead == (why == "") {
				t.Fatalf("Dead = %t with reason %q", dead, why)
			}
		})
	}
}
