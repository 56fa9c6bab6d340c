package testbed

import "testing"

func TestParseTimelineLine(t *testing.T) {
	cases := []struct {
		name, line string
		want       string
		ok         bool
	}{
		{"a decision", `{"level":"info","ts":"2026-12-01T21:20:45.5Z","logger":"agent","msg":"Decided","node":"front2","failoverIP":"default/failover","action":"Hold","epoch":4,"after":"Wait","for":"310ms"}`,
			"front2: Decided epoch=4 action=Hold after=Wait for=310ms", true},
		{"a new owner", `{"level":"info","ts":"2026-12-01T21:20:45.5Z","msg":"New owner","owner":"front2","epoch":4,"previousOwner":"front1","released":true}`,
			"front2: New owner owner=front2 epoch=4 previousOwner=front1 released=true", true},
		{"another message", `{"level":"info","ts":"2026-12-01T21:20:45.5Z","msg":"Agent started"}`, "", false},
		{"an access log line", `10.99.0.100:34794 [01/Dec/2026:21:22:15.633] http_10.99.0.10_80 farm/front1 200`, "", false},
		{"no time", `{"level":"info","msg":"Decided"}`, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, ok := parseTimelineLine([]byte(tc.line), "front2")
			if ok != tc.ok || e.line != tc.want {
				t.Errorf("got %q, %v; want %q, %v", e.line, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestParseAsk(t *testing.T) {
	cases := []struct {
		name, line string
		ok         bool
		mac        string
	}{
		{"a front resolving the address", "1700000000.123456 aa:bb:cc:dd:ee:01 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.99.0.10 tell 10.99.0.11, length 28", true, "aa:bb:cc:dd:ee:01"},
		{"an announcement is a claim", "1700000000.123456 aa:bb:cc:dd:ee:02 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.99.0.10 tell 10.99.0.10, length 28", false, ""},
		{"another address", "1700000000.123456 aa:bb:cc:dd:ee:01 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.99.0.12 tell 10.99.0.11, length 28", false, ""},
		{"a reply", "1700000000.123456 aa:bb:cc:dd:ee:02 > aa:bb:cc:dd:ee:01, ethertype ARP (0x0806), length 42: Reply 10.99.0.10 is-at aa:bb:cc:dd:ee:02, length 28", false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, ok := parseAsk(tc.line, "10.99.0.10")
			if ok != tc.ok || e.MAC != tc.mac {
				t.Errorf("got %+v, %v; want MAC %q, %v", e, ok, tc.mac, tc.ok)
			}
		})
	}
}
