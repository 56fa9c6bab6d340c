package handoff

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"

	"github.com/webfarm/webfarm/internal/netnstest"
)

var (
	vip4 = netip.MustParseAddr("10.235.0.10")
	vip6 = netip.MustParseAddr("fd00:235::10")
)

func newForwarder(t *testing.T, ns *netnstest.NS) *Forwarder {
	t.Helper()
	h, err := netns.GetFromName(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	f, err := New(nftables.WithNetNSFd(int(h)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// TestNodeForwarderElements: Forward puts the link and address in the set
// with the window as its timeout, again with a new window, Stop takes it
// out (also when it is not there), and a Setup keeps what counts down.
// The packet path itself is tested with agent/vip's Manager
// (TestNodeHandOffForwards).
func TestNodeForwarderElements(t *testing.T) {
	ns := netnstest.New(t)
	f := newForwarder(t, ns)
	if err := f.Setup(); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	list := func() string { return ns.MustRun(t, "nft", "list", "ruleset") }
	for _, ip := range []netip.Addr{vip4, vip6} {
		if err := f.Forward(7, ip, time.Hour); err != nil {
			t.Fatalf("Forward %s: %v", ip, err)
		}
		if err := f.Forward(7, ip, time.Minute); err != nil {
			t.Fatalf("Forward %s again: %v", ip, err)
		}
	}
	got := list()
	for _, want := range []string{"7 . " + vip4.String() + " timeout 1m", "7 . " + vip6.String() + " timeout 1m", "iif . ip daddr @forward4 dup to ip daddr device iif drop", "iif . ip6 daddr @forward6 dup to ip6 daddr device iif drop",
		"iif . ip daddr @forward4 socket wildcard 0 meta mark set 0x00200000 accept", "iif . ip6 daddr @forward6 socket wildcard 0 meta mark set 0x00200000 accept"} {
		if !strings.Contains(got, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, got)
		}
	}
	if err := f.Setup(); err != nil {
		t.Fatalf("Setup again: %v", err)
	}
	if got := list(); !strings.Contains(got, vip4.String()) {
		t.Errorf("a second Setup dropped the forwarding:\n%s", got)
	}
	for _, ip := range []netip.Addr{vip4, vip6} {
		for range 2 {
			if err := f.Stop(7, ip); err != nil {
				t.Fatalf("Stop %s: %v", ip, err)
			}
		}
	}
	if got := list(); strings.Contains(got, vip4.String()) || strings.Contains(got, vip6.String()) {
		t.Errorf("still forwarding after Stop:\n%s", got)
	}
	if err := f.Forward(7, vip4, 0); err == nil {
		t.Error("Forward with no window: no error (the element would never expire)")
	}
}

// TestNodeForwarderLeavesOthersAlone: the forwarder's tables come and go,
// and nothing else changes; it sets itself up again when they were
// deleted under it.
func TestNodeForwarderLeavesOthersAlone(t *testing.T) {
	ns := netnstest.New(t)
	for _, cmd := range [][]string{
		{"add", "table", "ip", "other"},
		{"add", "chain", "ip", "other", "prerouting", "{ type filter hook prerouting priority -300; policy accept; }"},
		{"add", "rule", "ip", "other", "prerouting", "ip daddr", vip4.String(), "accept"},
	} {
		ns.MustRun(t, "nft", cmd...)
	}
	before := ns.MustRun(t, "nft", "list", "ruleset")
	f := newForwarder(t, ns)
	if err := f.Setup(); err != nil {
		t.Fatal(err)
	}
	ns.MustRun(t, "nft", "delete", "table", "ip", TableName)
	if err := f.Forward(3, vip4, time.Minute); err != nil {
		t.Fatalf("Forward after its table was deleted: %v", err)
	}
	if got := ns.MustRun(t, "nft", "list", "table", "ip", TableName); !strings.Contains(got, vip4.String()) {
		t.Errorf("not set up again:\n%s", got)
	}
	for range 2 {
		if err := f.Remove(); err != nil {
			t.Fatalf("Remove: %v", err)
		}
	}
	if after := ns.MustRun(t, "nft", "list", "ruleset"); after != before {
		t.Errorf("ruleset after the forwarder came and went:\n%s\nwant, as before:\n%s", after, before)
	}
}
