package testbed

import (
	"net/http"
	"testing"
	"time"
)

func TestLoadResultGap(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int, ok bool) Sample {
		s := Sample{Start: t0.Add(time.Duration(ms) * time.Millisecond)}
		if ok {
			s.Status, s.Front = http.StatusOK, "front1"
		} else {
			s.Err = "connection refused"
		}
		return s
	}
	tests := []struct {
		name    string
		samples []Sample
		want    time.Duration
	}{
		{"no failure", []Sample{at(0, true), at(20, true)}, 0},
		{"one outage: last success before to first after", []Sample{at(0, true), at(20, false), at(40, false), at(60, true)}, 60 * time.Millisecond},
		{"longest of two", []Sample{at(0, true), at(20, false), at(40, true), at(60, false), at(80, false), at(200, true)}, 160 * time.Millisecond},
		{"failing from the start", []Sample{at(0, false), at(20, false), at(50, true)}, 50 * time.Millisecond},
		{"failing at the end counts to the last sample", []Sample{at(0, true), at(20, false), at(90, false)}, 90 * time.Millisecond},
		{"HAProxy's own 503 is a failure", []Sample{at(0, true), {Start: t0.Add(20 * time.Millisecond), Status: 503}, at(30, true)}, 30 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (LoadResult{Samples: tt.samples}).Gap(); got != tt.want {
				t.Errorf("Gap() = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseARP(t *testing.T) {
	tests := []struct {
		line     string
		ok       bool
		mac      string
		announce bool
	}{
		{"1764000000.250000 02:aa:bb:cc:dd:01 > 02:aa:bb:cc:dd:99, ethertype ARP (0x0806), length 42: Reply 10.99.0.10 is-at 02:aa:bb:cc:dd:01, length 28",
			true, "02:aa:bb:cc:dd:01", false},
		{"1764000000.250000 02:aa:bb:cc:dd:02 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.99.0.10 tell 10.99.0.10, length 28",
			true, "02:aa:bb:cc:dd:02", true},
		{"1764000000.250000 02:aa:bb:cc:dd:02 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.99.0.10 (ff:ff:ff:ff:ff:ff) tell 10.99.0.10, length 28",
			true, "02:aa:bb:cc:dd:02", true},
		// The client's probe asks for the VIP: no claim.
		{"1764000000.250000 02:aa:bb:cc:dd:99 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.99.0.10 tell 10.99.0.100, length 28",
			false, "", false},
		// Another address's reply: not about the VIP.
		{"1764000000.250000 02:aa:bb:cc:dd:01 > 02:aa:bb:cc:dd:99, ethertype ARP (0x0806), length 42: Reply 10.99.0.11 is-at 02:aa:bb:cc:dd:01, length 28",
			false, "", false},
	}
	for _, tt := range tests {
		e, ok := parseARP(tt.line, VIP)
		if ok != tt.ok || e.MAC != tt.mac || e.Announce != tt.announce {
			t.Errorf("parseARP(%q) = %+v, %t; want MAC %q announce %t, %t", tt.line, e, ok, tt.mac, tt.announce, tt.ok)
		}
		if ok && !e.Time.Equal(time.Unix(1764000000, 250000000)) {
			t.Errorf("parseARP(%q): time %s", tt.line, e.Time)
		}
	}
}

func TestARPWatcherConflicts(t *testing.T) {
	t0 := time.Unix(1764000000, 0)
	ev := func(ms int, mac string) ARPEvent {
		return ARPEvent{Time: t0.Add(time.Duration(ms) * time.Millisecond), MAC: mac}
	}
	w := &ARPWatcher{events: []ARPEvent{
		ev(0, "a"), ev(100, "a"), ev(200, "b"), ev(300, "b"), // a clean move
		ev(400, "b"), ev(401, "c"), // two answers to one probe
	}}
	conflicts := w.Conflicts(probeInterval / 2)
	if len(conflicts) != 1 || conflicts[0][0].MAC != "b" || conflicts[0][1].MAC != "c" {
		t.Errorf("Conflicts = %v, want exactly b/c at 400ms", conflicts)
	}
	if got := w.Holders(); len(got) != 3 || got[0] != "a" || got[1] != "b" || got[2] != "c" {
		t.Errorf("Holders = %v, want [a b c]", got)
	}
}
