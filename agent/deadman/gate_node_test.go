package deadman

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// answers reports, for each of the probes, whether the node answered.
type answers struct{ arp, ns, tcp4, tcp6 bool }

func (n *testNet) probeAll(t *testing.T, port uint16) answers {
	t.Helper()
	return answers{
		arp: n.answersARP(t, vip4), ns: n.answersNS(t, vip6),
		tcp4: n.connects(t, vip4, port), tcp6: n.connects(t, vip6, port),
	}
}

func (n *testNet) wantAll(t *testing.T, port uint16, want bool, when string) {
	t.Helper()
	if got := n.probeAll(t, port); got != (answers{want, want, want, want}) {
		t.Errorf("%s: answered ARP, NS, TCP/IPv4, TCP/IPv6 = %+v, want all %v", when, got, want)
	}
}

func TestNodeGateAllowRevokeExpire(t *testing.T) {
	n := newTestNet(t)
	port := n.listen(t)
	g := n.gate(t)
	n.wantAll(t, port, true, "without gate")
	if err := g.Setup(); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	n.wantAll(t, port, true, "set up, nothing managed")

	for _, ip := range []netip.Addr{vip4, vip6} {
		if err := g.Allow(ip, time.Minute); err != nil {
			t.Fatalf("Allow: %v", err)
		}
	}
	n.wantAll(t, port, true, "allowed for a minute")

	for _, ip := range []netip.Addr{vip4, vip6} {
		if err := g.Revoke(ip); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
	}
	n.wantAll(t, port, false, "revoked")
	if !n.answersARP(t, nodeIP) || !n.answersNS(t, nodeIP6) || !n.connects(t, nodeIP, port) || !n.connects(t, nodeIP6, port) {
		t.Error("the node's own addresses, not managed, do not answer while the failover addresses are revoked")
	}
	if n.sendsARPFrom(t, vip4) {
		t.Error("the node sent ARP as the revoked address")
	}

	// A grant refreshed before it ran out, then left to expire.
	const grant = 400 * time.Millisecond
	for range 2 {
		for _, ip := range []netip.Addr{vip4, vip6} {
			if err := g.Allow(ip, grant); err != nil {
				t.Fatalf("Allow: %v", err)
			}
		}
	}
	allowed := time.Now()
	var sent time.Time
	eventually(t, "IPv4 silent after its grant", func() bool { sent = time.Now(); return !n.answersARP(t, vip4) })
	t.Logf("first unanswered ARP request for %s sent %v after a grant of %v", vip4, sent.Sub(allowed).Round(time.Millisecond), grant)
	eventually(t, "IPv6 silent after its grant", func() bool { return !n.answersNS(t, vip6) })
	n.wantAll(t, port, false, "grant expired")

	for _, ip := range []netip.Addr{vip4, vip6} {
		if err := g.Allow(ip, time.Minute); err != nil {
			t.Fatalf("Allow after expiry: %v", err)
		}
	}
	n.wantAll(t, port, true, "allowed after expiry")
	if !n.sendsARPFrom(t, vip4) {
		t.Error("the node sent no ARP as the allowed address")
	}

	for _, ip := range []netip.Addr{vip4, vip6} {
		if err := g.Revoke(ip); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if err := g.Forget(ip); err != nil {
			t.Fatalf("Forget: %v", err)
		}
		if err := g.Forget(ip); err != nil {
			t.Fatalf("second Forget: %v", err)
		}
	}
	n.wantAll(t, port, true, "forgotten")
}

func TestNodeGateRefusesShortGrants(t *testing.T) {
	n := newTestNet(t)
	g := n.gate(t)
	if err := g.Setup(); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if err := g.Revoke(vip4); err != nil {
		t.Fatal(err)
	}
	// A grant the kernel would round to no timeout at all: never granted.
	for _, grant := range []time.Duration{0, -time.Second, time.Millisecond - 1} {
		if err := g.Allow(vip4, grant); err == nil {
			t.Errorf("Allow(%v) succeeded, want an error", grant)
		}
	}
	if n.answersARP(t, vip4) {
		t.Error("a refused grant let the address answer")
	}
}

// TestNodeGateSetupKeepsGrants: a restarted agent sets the gate up again
// without ending the grants its predecessor gave, and repairs its rules.
func TestNodeGateSetupKeepsGrants(t *testing.T) {
	n := newTestNet(t)
	first := n.gate(t)
	if err := first.Setup(); err != nil {
		t.Fatal(err)
	}
	if err := first.Allow(vip4, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := first.Revoke(vip6); err != nil {
		t.Fatal(err)
	}
	n.node.MustRun(t, "nft", "flush", "chain", "inet", TableName, "input")
	n.node.MustRun(t, "nft", "flush", "chain", "inet", TableName, "output")
	if !n.answersNS(t, vip6) {
		t.Fatal("precondition: the flushed chains should let the revoked IPv6 address answer")
	}

	second := n.gate(t)
	if err := second.Setup(); err != nil {
		t.Fatalf("second Setup: %v", err)
	}
	if !n.answersARP(t, vip4) {
		t.Error("the grant given before the second Setup ended")
	}
	if n.answersNS(t, vip6) {
		t.Error("the second Setup did not restore the flushed rules")
	}
	if err := second.Revoke(vip4); err != nil {
		t.Fatal(err)
	}
	if n.answersARP(t, vip4) {
		t.Error("a revoke by the second gate left the address answering")
	}
}

// TestNodeGateRepairsItself: a gate whose tables someone deleted, or whose
// chains someone flushed, sets itself up again at its next change, rather
// than leave its addresses answering without a grant.
func TestNodeGateRepairsItself(t *testing.T) {
	n := newTestNet(t)
	g := n.gate(t)
	if err := g.Setup(); err != nil {
		t.Fatal(err)
	}
	if err := g.Allow(vip4, time.Minute); err != nil {
		t.Fatal(err)
	}
	n.node.MustRun(t, "nft", "flush", "ruleset")
	if err := g.Revoke(vip4); err != nil {
		t.Fatalf("Revoke after the ruleset was flushed: %v", err)
	}
	if n.answersARP(t, vip4) {
		t.Error("revoked after the ruleset was flushed, the address still answers")
	}
	n.node.MustRun(t, "nft", "delete", "table", "arp", TableName)
	if err := g.Allow(vip4, time.Minute); err != nil {
		t.Fatalf("Allow after the arp table was deleted: %v", err)
	}
	if err := g.Revoke(vip4); err != nil {
		t.Fatal(err)
	}
	if n.answersARP(t, vip4) {
		t.Error("revoked after the arp table was deleted, the address still answers")
	}

	// Rules flushed out of the chains come back at the next change once
	// the resync interval passed.
	n.node.MustRun(t, "nft", "flush", "chain", "arp", TableName, "input")
	n.node.MustRun(t, "nft", "flush", "chain", "arp", TableName, "output")
	if !n.answersARP(t, vip4) {
		t.Fatal("precondition: the flushed chain should let the revoked address answer")
	}
	g.resync = 0
	if err := g.Revoke(vip4); err != nil {
		t.Fatal(err)
	}
	if n.answersARP(t, vip4) {
		t.Error("revoked after its rules were flushed and the resync interval passed, the address still answers")
	}
}

// TestNodeGateLeavesOthersAlone: the gate adds and removes its own tables
// and nothing else; removed, it leaves the addresses answering.
func TestNodeGateLeavesOthersAlone(t *testing.T) {
	n := newTestNet(t)
	for _, cmd := range [][]string{
		{"add", "table", "inet", "other"},
		{"add", "chain", "inet", "other", "input", "{ type filter hook input priority 0; policy accept; }"},
		{"add", "rule", "inet", "other", "input", "ip daddr", vip4.String(), "accept"},
		{"add", "table", "arp", "other"},
		{"add", "chain", "arp", "other", "input", "{ type filter hook input priority 0; }"},
		{"add", "rule", "arp", "other", "input", "arp operation request accept"},
	} {
		n.node.MustRun(t, "nft", cmd...)
	}
	before := n.node.MustRun(t, "nft", "list", "ruleset")

	g := n.gate(t)
	if err := g.Setup(); err != nil {
		t.Fatal(err)
	}
	if err := g.Revoke(vip4); err != nil {
		t.Fatal(err)
	}
	if n.answersARP(t, vip4) {
		t.Error("another table's accept made the revoked address answer")
	}
	if err := g.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := g.Remove(); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if after := n.node.MustRun(t, "nft", "list", "ruleset"); after != before {
		t.Errorf("ruleset after the gate came and went:\n%s\nwant, as before:\n%s", after, before)
	}
	if strings.Contains(before, TableName) {
		t.Fatalf("precondition: %s in the ruleset before Setup", TableName)
	}
	if !n.answersARP(t, vip4) {
		t.Error("the address does not answer once the gate is removed")
	}
}

// sendsARPFrom makes the node send a datagram from ip to the peer, with an
// empty neighbour table, and reports whether the peer received an ARP
// request with ip as its sender.
func (n *testNet) sendsARPFrom(t *testing.T, ip netip.Addr) bool {
	t.Helper()
	n.node.MustRun(t, "ip", "neigh", "flush", "dev", n.link)
	err := n.node.Do(func() error {
		conn, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)),
			net.UDPAddrFromAddrPort(netip.AddrPortFrom(peerIP, 9)))
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = conn.Write([]byte("who has the peer"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n.arp.await(t, time.Now().Add(500*time.Millisecond), arpRequest, ip)
}
