package vip

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestLabel(t *testing.T) {
	tests := []struct {
		link, want string
	}{
		{"eth0", "eth0:wf"},
		{"enp0s31f6", "enp0s31f6:wf"},
		{"bond0.1234", "bond0.1234:wf"},
		{"enx0011223344", "enx001122334:wf"},
		{"enx001122334455", "enx001122334:wf"},
	}
	for _, tt := range tests {
		t.Run(tt.link, func(t *testing.T) {
			got := label(tt.link)
			if got != tt.want {
				t.Errorf("label(%q) = %q, want %q", tt.link, got, tt.want)
			}
			if len(got) > maxLabelLen {
				t.Errorf("label %q longer than %d", got, maxLabelLen)
			}
			if !hasOurLabel(netlink.Addr{Label: got}) {
				t.Errorf("label %q not recognised as ours", got)
			}
		})
	}
}

func TestHasOurLabel(t *testing.T) {
	tests := []struct {
		label string
		want  bool
	}{
		{"eth0:wf", true},
		{"eth0", false},
		{"eth0:1", false},
		{"eth0:wfx", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := hasOurLabel(netlink.Addr{Label: tt.label}); got != tt.want {
			t.Errorf("hasOurLabel(%q) = %v, want %v", tt.label, got, tt.want)
		}
	}
}

func TestHostAddr(t *testing.T) {
	tests := []struct {
		ip        string
		wantNet   string
		wantLabel string
		wantFlags int
		wantValid int
	}{
		{"10.77.0.100", "10.77.0.100/32", "eth0:wf", unix.IFA_F_NOPREFIXROUTE, 0},
		{"fd00:77::100", "fd00:77::100/128", "", unix.IFA_F_NOPREFIXROUTE | unix.IFA_F_NODAD, 0xffffffff},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			a := hostAddr("eth0", netip.MustParseAddr(tt.ip))
			if a.IPNet.String() != tt.wantNet {
				t.Errorf("address %s, want %s", a.IPNet, tt.wantNet)
			}
			if a.Label != tt.wantLabel {
				t.Errorf("label %q, want %q", a.Label, tt.wantLabel)
			}
			if a.Flags != tt.wantFlags {
				t.Errorf("flags %#x, want %#x", a.Flags, tt.wantFlags)
			}
			if a.ValidLft != tt.wantValid || a.PreferedLft != 0 {
				t.Errorf("lifetimes valid %d preferred %d, want %d and 0", a.ValidLft, a.PreferedLft, tt.wantValid)
			}
			if !isHostLength(*a) {
				t.Errorf("%s is not host-length", a.IPNet)
			}
		})
	}
}

func TestIsHostLength(t *testing.T) {
	tests := []struct {
		cidr string
		want bool
	}{
		{"10.77.0.1/24", false},
		{"10.77.0.100/32", true},
		{"fd00:77::1/64", false},
		{"fd00:77::100/128", true},
	}
	for _, tt := range tests {
		_, n, _ := net.ParseCIDR(tt.cidr)
		if got := isHostLength(netlink.Addr{IPNet: n}); got != tt.want {
			t.Errorf("isHostLength(%s) = %v, want %v", tt.cidr, got, tt.want)
		}
	}
}

func TestCheckFailoverIP(t *testing.T) {
	tests := []struct {
		ip      netip.Addr
		wantErr bool
	}{
		{netip.MustParseAddr("10.77.0.100"), false},
		{netip.MustParseAddr("fd00:77::100"), false},
		{netip.Addr{}, true},
		{netip.MustParseAddr("0.0.0.0"), true},
		{netip.MustParseAddr("127.0.0.1"), true},
		{netip.MustParseAddr("fe80::1"), true},
		{netip.MustParseAddr("ff02::1"), true},
		{netip.MustParseAddr("224.0.0.1"), true},
	}
	for _, tt := range tests {
		if err := checkFailoverIP(tt.ip); (err != nil) != tt.wantErr {
			t.Errorf("checkFailoverIP(%v) = %v, want error %v", tt.ip, err, tt.wantErr)
		}
	}
}
