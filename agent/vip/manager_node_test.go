package vip

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/webfarm/webfarm/agent/deadman"
	"github.com/webfarm/webfarm/internal/netnstest"
)

var (
	nodeIP    = netip.MustParseAddr("10.232.0.1")
	peerIP    = netip.MustParseAddr("10.232.0.2")
	nodeIP6   = netip.MustParseAddr("fd00:232::1")
	peerIP6   = netip.MustParseAddr("fd00:232::2")
	vip4      = netip.MustParseAddr("10.232.0.100")
	vip4Other = netip.MustParseAddr("10.232.0.101")
	vip6      = netip.MustParseAddr("fd00:232::100")
)

// testNode is a node namespace with a Manager, joined by a veth to a peer
// namespace that captures what reaches it.
type testNode struct {
	node, peer     *netnstest.NS
	link, peerLink string
	mac            net.HardwareAddr
	handle         *netlink.Handle
	m              *Manager
	hookLog        string
	wire           *frameCapture
	gate           *orderGate
}

// testGrant is long enough for no grant to run out during a test.
const testGrant = time.Minute

func newTestNode(t *testing.T) *testNode {
	t.Helper()
	n := &testNode{node: netnstest.New(t), peer: netnstest.New(t)}
	suffix := randomHex(t, 2)
	n.link, n.peerLink = "vpa"+suffix, "vpb"+suffix
	if err := netnstest.Link(n.node, n.link, nodeIP.String()+"/24", n.peer, n.peerLink, peerIP.String()+"/24"); err != nil {
		t.Fatal(err)
	}
	n.node.MustRun(t, "ip", "-6", "addr", "add", nodeIP6.String()+"/64", "dev", n.link, "nodad")
	n.peer.MustRun(t, "ip", "-6", "addr", "add", peerIP6.String()+"/64", "dev", n.peerLink, "nodad")
	// Let the peer learn neighbours from announcements alone, as a router
	// configured for failover addresses does.
	n.peer.MustRun(t, "sysctl", "-qw", "net.ipv4.conf."+n.peerLink+".arp_accept=1")
	// (IPv6 learns from unsolicited advertisements only on a router.)
	n.peer.MustRun(t, "sysctl", "-qw", "net.ipv6.conf."+n.peerLink+".forwarding=1")
	n.peer.MustRun(t, "sysctl", "-qw", "net.ipv6.conf."+n.peerLink+".accept_untracked_na=1")

	h, err := n.node.Handle()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	n.handle = h
	link, err := h.LinkByName(n.link)
	if err != nil {
		t.Fatal(err)
	}
	n.mac = link.Attrs().HardwareAddr
	dir := t.TempDir()
	n.hookLog = filepath.Join(dir, "calls")
	n.gate = newOrderGate(t, n)
	n.m = &Manager{
		Handle:     h,
		Gate:       n.gate,
		NodeIP:     nodeIP,
		Announcer:  PacketAnnouncer{InNamespace: n.node.Do},
		Hook:       &Hook{Path: writeScript(t, dir, `echo "$@" >> "$(dirname "$0")/calls"`)},
		RecordPath: filepath.Join(dir, "record.json"),
	}
	n.wire = captureFrames(t, n.peer, n.peerLink, n.mac)
	return n
}

// addrs returns the addresses of the node's link equal to ip.
func (n *testNode) addrs(t *testing.T, ip netip.Addr) []netlink.Addr {
	t.Helper()
	link, err := n.handle.LinkByName(n.link)
	if err != nil {
		t.Fatal(err)
	}
	found, err := findAddr(n.handle, link, ip)
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// hookCalls returns the argument lines the hook ran with, in order.
func (n *testNode) hookCalls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(n.hookLog)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// release calls Release until the release hook is done.
func (n *testNode) release(t *testing.T, a Address) {
	t.Helper()
	waitFor(t, "the release hook", func() bool {
		err := n.m.Release(context.Background(), a)
		if err != nil && !errors.Is(err, ErrReleasing) {
			t.Fatalf("Release: %v", err)
		}
		return err == nil
	})
}

// hookLines returns the argument lines the hook runs with for the actions
// on vip4 of shop/www at epoch, in order.
func (n *testNode) hookLines(epoch int64, actions ...HookAction) []string {
	var lines []string
	for _, a := range actions {
		lines = append(lines, fmt.Sprintf("%s %s %s shop/www %d", a, vip4, n.link, epoch))
	}
	return lines
}

// peerNeighbour returns the link-layer address the peer's neighbour table
// holds for ip, or "" when it has none.
func (n *testNode) peerNeighbour(t *testing.T, ip netip.Addr) string {
	t.Helper()
	out := n.peer.MustRun(t, "ip", "neigh", "show", ip.String(), "dev", n.peerLink)
	fields := strings.Fields(out)
	for i, f := range fields {
		if f == "lladdr" && i+1 < len(fields) {
			return fields[i+1]
		}
	}
	return ""
}

func TestNodeEnsureIPv4(t *testing.T) {
	n := newTestNode(t)
	ctx := context.Background()
	a := Address{IP: vip4, FailoverIP: "shop/www", Epoch: 1}

	start := time.Now()
	if err := n.m.Ensure(ctx, a, testGrant); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	found := n.addrs(t, vip4)
	if len(found) != 1 {
		t.Fatalf("%s on %s: %v, want it once", vip4, n.link, found)
	}
	if got := found[0]; !isHostLength(got) || got.Label != n.link+":wf" || got.Flags&unix.IFA_F_NOPREFIXROUTE == 0 {
		t.Errorf("added %s label %q flags %#x, want a /32 labelled %s:wf without prefix route", got.IPNet, got.Label, got.Flags, n.link)
	}
	rounds := 2 * DefaultAnnounceCount // a request and a reply per round
	waitFor(t, "the peer receives every gratuitous ARP", func() bool { return n.wire.count(vip4) == rounds })
	t.Logf("Ensure call to first announcement on the peer's link: %v", n.wire.first(vip4).Sub(start))
	if got := n.peerNeighbour(t, vip4); got != n.mac.String() {
		t.Errorf("peer's neighbour entry for %s = %q, want %s", vip4, got, n.mac)
	}
	want := []string{fmt.Sprintf("takeover %s %s shop/www 1", vip4, n.link)}
	waitFor(t, "the takeover hook", func() bool { return equal(n.hookCalls(t), want) })

	// Same epoch again: nothing to do. The announcement of another address
	// marks the end of whatever the second call might have sent.
	if err := n.m.Ensure(ctx, a, testGrant); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	if err := n.m.Ensure(ctx, Address{IP: vip4Other, Interface: n.link, FailoverIP: "shop/api", Epoch: 1}, testGrant); err != nil {
		t.Fatalf("Ensure %s: %v", vip4Other, err)
	}
	waitFor(t, "the marker announcement", func() bool { return n.wire.count(vip4Other) == rounds })
	if got := n.wire.count(vip4); got != rounds {
		t.Errorf("%d announcements of %s after a second Ensure, want %d", got, vip4, rounds)
	}
	if got := len(n.addrs(t, vip4)); got != 1 {
		t.Errorf("%s on the link %d times after a second Ensure, want once", vip4, got)
	}

	// A new epoch is a new takeover: announced and hooked again.
	a.Epoch = 2
	if err := n.m.Ensure(ctx, a, testGrant); err != nil {
		t.Fatalf("Ensure at epoch 2: %v", err)
	}
	waitFor(t, "the announcements of epoch 2", func() bool { return n.wire.count(vip4) == 2*rounds })
	waitFor(t, "a third hook call, for epoch 2", func() bool {
		got := n.hookCalls(t)
		return len(got) == 3 && got[2] == fmt.Sprintf("takeover %s %s shop/www 2", vip4, n.link)
	})
}

func TestNodeEnsureIPv6(t *testing.T) {
	n := newTestNode(t)
	a := Address{IP: vip6, Interface: n.link, FailoverIP: "shop/www6", Epoch: 4}
	if err := n.m.Ensure(context.Background(), a, testGrant); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	found := n.addrs(t, vip6)
	if len(found) != 1 {
		t.Fatalf("%s on %s: %v, want it once", vip6, n.link, found)
	}
	if got := found[0]; !isHostLength(got) || got.Flags&unix.IFA_F_NODAD == 0 || got.Flags&unix.IFA_F_NOPREFIXROUTE == 0 {
		t.Errorf("added %s flags %#x, want a /128 with nodad and noprefixroute", got.IPNet, got.Flags)
	}
	waitFor(t, "the peer receives every neighbour advertisement", func() bool { return n.wire.count(vip6) == DefaultAnnounceCount })
	if got := n.peerNeighbour(t, vip6); got != n.mac.String() {
		t.Errorf("peer's neighbour entry for %s = %q, want %s", vip6, got, n.mac)
	}
	want := []string{fmt.Sprintf("takeover %s %s shop/www6 4", vip6, n.link)}
	waitFor(t, "the takeover hook", func() bool { return equal(n.hookCalls(t), want) })
}

func TestNodeRelease(t *testing.T) {
	n := newTestNode(t)
	ctx := context.Background()
	a := Address{IP: vip4, FailoverIP: "shop/www", Epoch: 3}
	if err := n.m.Ensure(ctx, a, testGrant); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	waitFor(t, "the takeover hook", func() bool { return len(n.hookCalls(t)) == 1 })
	n.release(t, a)
	if found := n.addrs(t, vip4); len(found) != 0 {
		t.Errorf("%s still on %s after Release: %v", vip4, n.link, found)
	}
	if err := n.m.Release(ctx, a); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	want := n.hookLines(3, HookTakeover, HookRelease)
	if got := n.hookCalls(t); !equal(got, want) {
		t.Errorf("hook calls = %q, want %q (no release hook for an address already gone)", got, want)
	}
}

// TestNodeHooksBesideTheCaller: Ensure returns once the address is there
// and allowed, Release once it is revoked and gone; announcements and hooks
// run beside them, and Release stops a takeover hook still running.
func TestNodeHooksBesideTheCaller(t *testing.T) {
	n := newTestNode(t)
	ctx := context.Background()
	n.m.Hook = &Hook{Path: writeScript(t, t.TempDir(), `echo "$@" >> `+n.hookLog+`
[ "$1" = takeover ] && sleep 30 && echo takeover finished >> `+n.hookLog+`
sleep 1`)}
	a := Address{IP: vip4, FailoverIP: "shop/www", Epoch: 5}

	start := time.Now()
	if err := n.m.Ensure(ctx, a, testGrant); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	t.Logf("Ensure returned after %v", time.Since(start))
	if got := len(n.addrs(t, vip4)); got != 1 {
		t.Fatalf("%s on the link %d times after Ensure returned, want once", vip4, got)
	}
	waitFor(t, "the takeover hook to start", func() bool { return len(n.hookCalls(t)) == 1 })
	waitFor(t, "every announcement", func() bool { return n.wire.count(vip4) == 2*DefaultAnnounceCount })

	start = time.Now()
	if err := n.m.Release(ctx, a); !errors.Is(err, ErrReleasing) {
		t.Fatalf("Release with a hook that takes a second: %v, want ErrReleasing", err)
	}
	t.Logf("Release returned after %v, the release hook running", time.Since(start))
	if found := n.addrs(t, vip4); len(found) != 0 {
		t.Errorf("%s still on %s after Release returned: %v", vip4, n.link, found)
	}
	n.release(t, a)
	t.Logf("release hook done %v after the first Release", time.Since(start))
	want := n.hookLines(5, HookTakeover, HookRelease)
	if got := n.hookCalls(t); !equal(got, want) {
		t.Errorf("hook calls = %q, want %q: the takeover hook stopped, then the release hook", got, want)
	}
}

// TestNodeGateOrder: the gate allows an address before it is added and
// revokes it before it is removed, and forgets it once it is gone.
func TestNodeGateOrder(t *testing.T) {
	n := newTestNode(t)
	ctx := context.Background()
	n.m.Hook = nil // one Release, not one per pass while a hook runs
	a := Address{IP: vip4, FailoverIP: "shop/www", Epoch: 1}
	for _, grant := range []time.Duration{time.Minute, 2 * time.Minute} {
		if err := n.m.Ensure(ctx, a, grant); err != nil {
			t.Fatalf("Ensure: %v", err)
		}
	}
	if err := n.m.Release(ctx, a); err != nil {
		t.Fatalf("Release: %v", err)
	}
	want := []string{
		"allow 10.232.0.100 for 1m0s, absent",
		"allow 10.232.0.100 for 2m0s, present",
		"revoke 10.232.0.100, present",
		"forget 10.232.0.100, absent",
	}
	if got := n.gate.log(); !equal(got, want) {
		t.Errorf("gate calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// orderGate is a real gate in the node namespace that records each call
// and whether the address was on the node's link at the time.
type orderGate struct {
	t    *testing.T
	n    *testNode
	gate *deadman.Gate

	mu    sync.Mutex
	calls []string
}

func newOrderGate(t *testing.T, n *testNode) *orderGate {
	t.Helper()
	h, err := netns.GetFromName(n.node.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	g, err := deadman.New(nftables.WithNetNSFd(int(h)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	if err := g.Setup(); err != nil {
		t.Fatal(err)
	}
	return &orderGate{t: t, n: n, gate: g}
}

func (g *orderGate) Allow(ip netip.Addr, grant time.Duration) error {
	// What is left of the grant when the gate opens: the asked one, less
	// the moment the call took.
	g.note(fmt.Sprintf("allow %s for %v", ip, grant.Round(time.Second)), ip)
	return g.gate.Allow(ip, grant)
}

func (g *orderGate) Revoke(ip netip.Addr) error {
	g.note("revoke "+ip.String(), ip)
	return g.gate.Revoke(ip)
}

func (g *orderGate) Forget(ip netip.Addr) error {
	g.note("forget "+ip.String(), ip)
	return g.gate.Forget(ip)
}

func (g *orderGate) note(call string, ip netip.Addr) {
	where := "absent"
	if len(g.n.addrs(g.t, ip)) > 0 {
		where = "present"
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, call+", "+where)
}

func (g *orderGate) log() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.calls)
}

// TestNodeNodeAddressUntouched: an address the node holds with a shorter
// prefix is its own; neither Ensure nor Release may change it.
func TestNodeNodeAddressUntouched(t *testing.T) {
	n := newTestNode(t)
	ctx := context.Background()
	own := netip.MustParseAddr("10.232.0.50")
	n.node.MustRun(t, "ip", "addr", "add", own.String()+"/24", "dev", n.link)
	a := Address{IP: own, FailoverIP: "shop/www", Epoch: 1}

	if err := n.m.Release(ctx, a); err == nil {
		t.Error("Release of the node's own address succeeded, want an error")
	}
	if err := n.m.Ensure(ctx, a, testGrant); err == nil {
		t.Error("Ensure over the node's own address succeeded, want an error")
	}
	found := n.addrs(t, own)
	if len(found) != 1 || found[0].IPNet.String() != own.String()+"/24" {
		t.Errorf("node address after Release and Ensure: %v, want only %s/24", found, own)
	}
	if got := n.hookCalls(t); len(got) != 0 {
		t.Errorf("hook ran %q for the node's own address", got)
	}
	if got := n.gate.log(); len(got) != 0 {
		t.Errorf("the gate heard of the node's own address: %q", got)
	}
}

func TestNodeCleanup(t *testing.T) {
	n := newTestNode(t)
	ctx := context.Background()
	n.ensureBoth(t)
	waitFor(t, "both takeover hooks", func() bool { return len(n.hookCalls(t)) == 2 })
	// Host-length addresses someone else added: unlabelled, labelled
	// otherwise, and IPv6 that no record lists.
	for _, args := range [][]string{
		{"addr", "add", "10.232.0.77/32", "dev", n.link},
		{"addr", "add", "10.232.0.78/32", "dev", n.link, "label", n.link + ":x"},
		{"-6", "addr", "add", "fd00:232::77/128", "dev", n.link, "nodad"},
	} {
		n.node.MustRun(t, "ip", args...)
	}
	// A recorded address that the node holds with a shorter prefix is
	// still the node's.
	if err := (record{path: n.m.RecordPath}).add(nodeIP); err != nil {
		t.Fatal(err)
	}
	calls := n.hookCalls(t)

	if err := n.m.Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	for _, ip := range []netip.Addr{vip4, vip6} {
		if found := n.addrs(t, ip); len(found) != 0 {
			t.Errorf("%s still on the link after Cleanup: %v", ip, found)
		}
	}
	for _, ip := range []string{"10.232.0.77", "10.232.0.78", "fd00:232::77", nodeIP.String(), nodeIP6.String()} {
		if found := n.addrs(t, netip.MustParseAddr(ip)); len(found) != 1 {
			t.Errorf("address %s not ours: %v after Cleanup, want it kept", ip, found)
		}
	}
	if got := n.hookCalls(t); !equal(got, calls) {
		t.Errorf("Cleanup ran the hook: calls %q, want %q", got, calls)
	}
}

// TestNodeCleanupWithoutRecord: the label alone marks an IPv4 address as
// ours, for an agent that lost its record.
func TestNodeCleanupWithoutRecord(t *testing.T) {
	n := newTestNode(t)
	n.node.MustRun(t, "ip", "addr", "add", vip4.String()+"/32", "dev", n.link, "label", n.link+":wf")
	if err := n.m.Cleanup(context.Background()); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if found := n.addrs(t, vip4); len(found) != 0 {
		t.Errorf("labelled %s kept by Cleanup without record: %v", vip4, found)
	}
	if found := n.addrs(t, nodeIP); len(found) != 1 {
		t.Errorf("node address after Cleanup: %v, want kept", found)
	}
}

// ensureBoth holds vip4 and vip6 on the test link.
func (n *testNode) ensureBoth(t *testing.T) {
	t.Helper()
	for _, a := range []Address{
		{IP: vip4, FailoverIP: "shop/www", Epoch: 1},
		{IP: vip6, Interface: n.link, FailoverIP: "shop/www6", Epoch: 1},
	} {
		if err := n.m.Ensure(context.Background(), a, testGrant); err != nil {
			t.Fatalf("Ensure %s: %v", a.IP, err)
		}
	}
}

func equal(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

// waitFor polls cond every 10ms until it holds or 5s passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stayedFor polls cond every 10ms for d and fails the test if it stops
// holding.
func stayedFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !cond() {
			t.Fatalf("%s: it did not hold", what)
		}
	}
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// frameCapture records, from a packet socket on the peer's link, the
// announcements sent from mac: gratuitous ARP and neighbour advertisements,
// by the address they announce.
type frameCapture struct {
	mac net.HardwareAddr

	mu     sync.Mutex
	frames map[netip.Addr][]time.Time
}

func captureFrames(t *testing.T, ns *netnstest.NS, link string, mac net.HardwareAddr) *frameCapture {
	t.Helper()
	fd, err := ns.PacketSocket(link, unix.SOCK_RAW, unix.ETH_P_ALL)
	if err != nil {
		t.Fatal(err)
	}
	c := &frameCapture{mac: mac, frames: map[netip.Addr][]time.Time{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { c.read(fd, stop) })
	t.Cleanup(func() { close(stop); wg.Wait(); unix.Close(fd) })
	return c
}

func (c *frameCapture) read(fd int, stop chan struct{}) {
	buf := make([]byte, 2048)
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			continue // the receive timeout, to look at stop
		}
		if ip, ok := announced(buf[:n], c.mac); ok {
			c.mu.Lock()
			c.frames[ip] = append(c.frames[ip], time.Now())
			c.mu.Unlock()
		}
	}
}

func (c *frameCapture) count(ip netip.Addr) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.frames[ip])
}

func (c *frameCapture) first(ip netip.Addr) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames[ip][0]
}

// announced returns the address a frame from mac announces, if it is a
// gratuitous ARP (sender and target address equal) or a neighbour
// advertisement with the override flag.
func announced(f []byte, mac net.HardwareAddr) (netip.Addr, bool) {
	if len(f) < ethHeaderLen || !bytesEqual(f[6:12], mac) {
		return netip.Addr{}, false
	}
	switch binary.BigEndian.Uint16(f[12:14]) {
	case etherTypeARP:
		arp := f[ethHeaderLen:]
		if len(arp) < 28 || !bytesEqual(arp[8:14], mac) || !bytesEqual(arp[14:18], arp[24:28]) {
			return netip.Addr{}, false
		}
		return netip.AddrFrom4([4]byte(arp[14:18])), true
	case etherTypeIPv6:
		ip6 := f[ethHeaderLen:]
		if len(ip6) < 40+24 || ip6[6] != protoICMPv6 || ip6[40] != icmpv6NeighborAdvert {
			return netip.Addr{}, false
		}
		icmp := ip6[40:]
		if binary.BigEndian.Uint32(icmp[4:])&naFlagOverride == 0 {
			return netip.Addr{}, false
		}
		return netip.AddrFrom16([16]byte(icmp[8:24])), true
	}
	return netip.Addr{}, false
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// TestNodeRemoveAllButKeeps: a restarted agent removes the failover
// addresses its previous process left, except the ones its memory holds,
// which stay recorded for a later Cleanup.
func TestNodeRemoveAllButKeeps(t *testing.T) {
	n := newTestNode(t)
	ctx := context.Background()
	n.ensureBoth(t)
	if err := n.m.RemoveAllBut(ctx, []netip.Addr{vip6}); err != nil {
		t.Fatalf("RemoveAllBut: %v", err)
	}
	if found := n.addrs(t, vip4); len(found) != 0 {
		t.Errorf("%s, not kept, still on the link: %v", vip4, found)
	}
	if found := n.addrs(t, vip6); len(found) != 1 {
		t.Errorf("%s, kept, after RemoveAllBut: %v", vip6, found)
	}
	if err := n.m.Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if found := n.addrs(t, vip6); len(found) != 0 {
		t.Errorf("kept %s no longer recorded: Cleanup left it: %v", vip6, found)
	}
}

// TestNodeReleasedWhilePromoting: a node released while its master hook
// runs before the address is added (masterBeforeAnnounce) never held the
// address, but the hook may have made its server writable: the release
// stops the master hook, runs the backup hook once it has ended (never
// beside it), and only then reports the address released. The failover
// hook, which never ran a takeover, does not run a release either.
func TestNodeReleasedWhilePromoting(t *testing.T) {
	n := newTestNode(t)
	ctx := context.Background()
	log := filepath.Join(t.TempDir(), "notify")
	dir := hooksDir(t, map[string]string{
		"promote": `echo $$ > ` + log + `.pid
echo "master started $WEBFARM_EPOCH" >> ` + log + `
sleep 30`,
		// kill -0 tells whether the master hook still runs beside it.
		"fence": `if kill -0 "$(cat ` + log + `.pid)" 2>/dev/null; then m=running; else m=ended; fi
echo "$WEBFARM_STATE $WEBFARM_EPOCH, master $m" >> ` + log,
	})
	n.m.HooksDir = dir
	a := Address{IP: vip4, FailoverIP: "shop/www", Epoch: 8,
		Notify: &Notify{Master: "promote", Backup: "fence", Fault: "fence", MasterFirst: true}}

	if err := n.m.Ensure(ctx, a, testGrant); !errors.Is(err, ErrPromoting) {
		t.Fatalf("Ensure with a master hook first: %v, want ErrPromoting", err)
	}
	readLog := func() string { b, _ := os.ReadFile(log); return string(b) }
	waitFor(t, "the master hook to start", func() bool { return strings.Contains(readLog(), "master started") })
	if found := n.addrs(t, vip4); len(found) != 0 {
		t.Fatalf("%s added while its master hook runs: %v", vip4, found)
	}

	start := time.Now()
	if err := n.m.Release(ctx, a); !errors.Is(err, ErrReleasing) {
		t.Fatalf("Release while the master hook runs: %v, want ErrReleasing until the backup hook ran", err)
	}
	n.release(t, a)
	t.Logf("released %v after the first Release", time.Since(start))
	got := strings.Split(strings.TrimSpace(readLog()), "\n")
	want := []string{"master started 8", "backup 8, master ended"}
	if !equal(got, want) {
		t.Errorf("notify hooks = %q, want %q: the master hook stopped, then the backup hook after it", got, want)
	}
	if calls := n.hookCalls(t); len(calls) != 0 {
		t.Errorf("failover hook calls = %q, want none: the address was never taken over", calls)
	}
}

// TestNodeEnsureUntilAfterTheProofRanOut: a decision to hold carried out
// after its proof ran out (the agent waited on a loaded disk meanwhile)
// opens no gate, adds no address and announces nothing; one with time left
// grants only what is left, and stops announcing once it runs out.
func TestNodeEnsureUntilAfterTheProofRanOut(t *testing.T) {
	n := newTestNode(t)
	ctx := context.Background()
	a := Address{IP: vip4, FailoverIP: "shop/www", Epoch: 1}
	if err := n.m.EnsureUntil(ctx, a, time.Now().Add(-time.Millisecond)); !errors.Is(err, ErrProofExpired) {
		t.Fatalf("EnsureUntil on a spent proof = %v, want ErrProofExpired", err)
	}
	if found := n.addrs(t, vip4); len(found) != 0 {
		t.Errorf("%s added on a spent proof: %v", vip4, found)
	}
	// A proof with less left than the first announcement's round: the
	// first round goes, the later ones, past the grant, do not.
	if err := n.m.EnsureUntil(ctx, a, time.Now().Add(DefaultAnnounceInterval/2)); err != nil {
		t.Fatalf("EnsureUntil: %v", err)
	}
	waitFor(t, "the first round of announcements", func() bool { return n.wire.count(vip4) >= 2 })
	stayedFor(t, 3*DefaultAnnounceInterval, "no round after the grant ran out", func() bool { return n.wire.count(vip4) == 2 })
}
