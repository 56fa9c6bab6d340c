package agent

import (
	"net/netip"
	"testing"
)

func TestHAProxyMetricsAddress(t *testing.T) {
	node := netip.MustParseAddr("10.0.0.7")
	cases := []struct {
		value, want string // want "" for off, "error" for refused
	}{
		{"", "10.0.0.7:8404"},
		{"node:9101", "10.0.0.7:9101"},
		{"127.0.0.1:8404", "127.0.0.1:8404"},
		{"[::1]:8404", "[::1]:8404"},
		{"off", ""},
		{":8404", "error"},
		{"0.0.0.0:8404", "error"},
		{"[::]:8404", "error"},
		{"node:0", "error"},
		{"node:http", "error"},
		{"node", "error"},
	}
	for _, tc := range cases {
		t.Run(tc.value, func(t *testing.T) {
			o, err := Options{NodeName: "front1", HAProxyMetrics: tc.value}.withDefaults()
			if tc.want == "error" {
				if err == nil {
					t.Fatalf("accepted %q", tc.value)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := o.haproxyMetrics(node)
			if err != nil {
				t.Fatal(err)
			}
			if (tc.want == "" && got.IsValid()) || (tc.want != "" && got.String() != tc.want) {
				t.Fatalf("haproxyMetrics(%q) = %v, want %q", tc.value, got, tc.want)
			}
		})
	}
}
