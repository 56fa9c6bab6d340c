package testbed

import (
	"strings"
	"testing"
	"time"
)

func TestKeepalivedConfig(t *testing.T) {
	fronts := []*Front{
		{Name: "front1", Address: "10.99.0.11"},
		{Name: "front2", Address: "10.99.0.12"},
		{Name: "front3", Address: "10.99.0.13"},
	}
	tests := []struct {
		name     string
		front    int
		settings KeepalivedSettings
		want     []string
		not      []string
	}{
		{"default advert_int: VRRPv2", 0, KeepalivedDefault,
			[]string{"vrrp_version 2", "advert_int 1\n", "priority 200", "unicast_src_ip 10.99.0.11", "10.99.0.12\n", "10.99.0.13\n", "router_id front1", "10.99.0.20/32 dev eth0", "nopreempt", "state BACKUP"},
			[]string{"        10.99.0.11\n"}},
		{"sub-second advert_int needs VRRPv3", 1, KeepalivedFast,
			[]string{"vrrp_version 3", "advert_int 0.1\n", "priority 190", "unicast_src_ip 10.99.0.12", "        10.99.0.11\n", "        10.99.0.13\n"},
			[]string{"        10.99.0.12\n"}},
		{"250ms", 2, KeepalivedSettings{AdvertInt: 250 * time.Millisecond},
			[]string{"vrrp_version 3", "advert_int 0.25\n", "priority 180"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := keepalivedConfig(tt.front, fronts, benchInstance(tt.settings), "/k")
			for _, w := range tt.want {
				if !strings.Contains(conf, w) {
					t.Errorf("config lacks %q:\n%s", w, conf)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(conf, n) {
					t.Errorf("config has %q (the front itself as a peer):\n%s", n, conf)
				}
			}
		})
	}
}
