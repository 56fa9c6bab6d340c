package vip

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/webfarm/webfarm/agent/deadman"
	"github.com/webfarm/webfarm/agent/handoff"
	"github.com/webfarm/webfarm/internal/netnstest"
)

// The hand-off LAN: two nodes and a client on one bridge.
var (
	lanVIP    = netip.MustParseAddr("10.234.0.10")
	lanVIP6   = netip.MustParseAddr("fd00:234::10")
	lanClient = netip.MustParseAddr("10.234.0.100")
)

// lanPort is where each node's server answers with the node's name.
const lanPort = 18080

// lanNode is a node on the hand-off LAN: its Manager has a real gate and a
// real forwarder in the node's namespace.
type lanNode struct {
	name string
	ns   *netnstest.NS
	mac  net.HardwareAddr
	m    *Manager
}

// handOffLAN is a bridge with a client and two nodes, A and B, that may
// hold lanVIP, each serving its name on lanPort.
type handOffLAN struct {
	client *netnstest.NS
	a, b   *lanNode
	claims *claimWatch
}

func newHandOffLAN(t *testing.T) *handOffLAN {
	t.Helper()
	sw := netnstest.New(t)
	sw.MustRun(t, "ip", "link", "add", "br0", "type", "bridge", "forward_delay", "0", "stp_state", "0", "mcast_snooping", "0")
	sw.MustRun(t, "ip", "link", "set", "br0", "up")
	lan := &handOffLAN{client: netnstest.New(t)}
	plugLAN(t, sw, lan.client, lanClient.String()+"/24", "fd00:234::100/64")
	lan.a = newLANNode(t, sw, "A", "10.234.0.1/24", "fd00:234::1/64")
	lan.b = newLANNode(t, sw, "B", "10.234.0.2/24", "fd00:234::2/64")
	lan.claims = watchClaims(t, lan.client, lanVIP)
	return lan
}

// plugLAN connects ns to the bridge by a veth whose end in ns is "lan"
// with an IPv4 and an IPv6 address.
func plugLAN(t *testing.T, sw, ns *netnstest.NS, addr4, addr6 string) {
	t.Helper()
	suffix := randomHex(t, 3)
	port, end := "wfhp"+suffix, "wfhe"+suffix
	steps := [][]string{
		{"ip", "link", "add", port, "type", "veth", "peer", "name", end},
		{"ip", "link", "set", port, "netns", sw.Name},
		{"ip", "link", "set", end, "netns", ns.Name, "name", "lan"},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			_ = exec.Command("ip", "link", "del", port).Run()
			t.Fatalf("%s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	sw.MustRun(t, "ip", "link", "set", port, "master", "br0", "up")
	ns.MustRun(t, "ip", "addr", "add", addr4, "dev", "lan")
	ns.MustRun(t, "ip", "addr", "add", addr6, "dev", "lan", "nodad")
	ns.MustRun(t, "ip", "link", "set", "lan", "up")
}

func newLANNode(t *testing.T, sw *netnstest.NS, name, addr4, addr6 string) *lanNode {
	t.Helper()
	ns := netnstest.New(t)
	plugLAN(t, sw, ns, addr4, addr6)
	// Answer ARP only for addresses on the receiving link, as the testbed's
	// fronts and most failover setups do.
	for _, kv := range []string{"all.arp_ignore=1", "lan.arp_ignore=1", "all.arp_announce=2", "lan.arp_announce=2"} {
		ns.MustRun(t, "sysctl", "-qw", "net.ipv4.conf."+kv)
	}
	fd, err := netns.GetFromName(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	h, err := netlink.NewHandleAt(fd, DiagFamilies...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	link, err := h.LinkByName("lan")
	if err != nil {
		t.Fatal(err)
	}
	gate, err := deadman.New(nftables.WithNetNSFd(int(fd)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gate.Close() })
	fwd, err := handoff.New(nftables.WithNetNSFd(int(fd)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fwd.Close() })
	if err := errors.Join(gate.Setup(), fwd.Setup()); err != nil {
		t.Fatal(err)
	}
	n := &lanNode{name: name, ns: ns, mac: link.Attrs().HardwareAddr, m: &Manager{
		Handle: h, Gate: gate, Forwarder: fwd,
		NodeIP:     netip.MustParsePrefix(addr4).Addr(),
		Announcer:  PacketAnnouncer{InNamespace: ns.Do},
		RecordPath: filepath.Join(t.TempDir(), "record.json"),
	}}
	n.serve(t)
	return n
}

// serve answers every connection on lanPort, to any address, with the
// node's name.
func (n *lanNode) serve(t *testing.T) {
	t.Helper()
	n.listen(t, lanPort, func(c net.Conn) {
		fmt.Fprintln(c, n.name)
		c.Close()
	})
}

// listen hands every connection on port (0: any free one, which it
// returns), to any address of the node, IPv4 or IPv6, to handle.
func (n *lanNode) listen(t *testing.T, port int, handle func(net.Conn)) int {
	t.Helper()
	var ln net.Listener
	if err := n.ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// ask opens a new connection from the client to the VIP and returns the
// name of the node that answered.
func (lan *handOffLAN) ask(timeout time.Duration) (string, error) {
	from, _, err := lan.askCounting(lanVIP, timeout)
	return from, err
}

// askCounting is ask that also tells how many segments the client sent
// again on that connection: a SYN lost, not queued, is sent again.
func (lan *handOffLAN) askCounting(vip netip.Addr, timeout time.Duration) (from string, retransmits uint32, err error) {
	err = lan.client.Do(func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(vip, lanPort).String(), timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		if retransmits, err = totalRetransmits(c.(*net.TCPConn)); err != nil {
			return err
		}
		from, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	return strings.TrimSpace(from), retransmits, err
}

// answer is what askMeanwhile got.
type answer struct {
	from        string
	retransmits uint32
	err         error
	at          time.Time
}

// askMeanwhile asks vip, allowing 3 s, while the test goes on.
func (lan *handOffLAN) askMeanwhile(vip netip.Addr) <-chan answer {
	answered := make(chan answer, 1)
	go func() {
		from, retransmits, err := lan.askCounting(vip, 3*time.Second)
		answered <- answer{from, retransmits, err, time.Now()}
	}()
	return answered
}

func totalRetransmits(c *net.TCPConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var info *unix.TCPInfo
	var infoErr error
	if err := raw.Control(func(fd uintptr) {
		info, infoErr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return 0, err
	}
	if infoErr != nil {
		return 0, infoErr
	}
	return info.Total_retrans, nil
}

// clientPointsAt makes the client's neighbour entry for the VIP name n's
// MAC, as the cache of a client that missed every announcement would.
func (lan *handOffLAN) clientPointsAt(t *testing.T, n *lanNode) {
	t.Helper()
	lan.client.MustRun(t, "ip", "neigh", "replace", lanVIP.String(), "lladdr", n.mac.String(), "dev", "lan", "nud", "stale")
}

// neighbourState is n's neighbour entry for vip ("" when none).
func (n *lanNode) neighbourState(t *testing.T, vip netip.Addr) string {
	t.Helper()
	return strings.TrimSpace(n.ns.MustRun(t, "ip", "neigh", "show", vip.String(), "dev", "lan"))
}

// TestNodeHandOffForwards hands the VIP from A to B on a LAN, with real
// packets: a connection the client opens after A released the address and
// before B holds it waits in A's neighbour queue and is answered by B as
// soon as B announces; a client whose cache still names A reaches B; A
// never answers ARP for the address after the release; the forwarding
// ends with its window; a failback to A stops A's forwarding first.
func TestNodeHandOffForwards(t *testing.T) {
	lan := newHandOffLAN(t)
	ctx := context.Background()
	addr := Address{IP: lanVIP, Interface: "lan", FailoverIP: "shop/www", Epoch: 1}
	lan.a.m.ForwardWindow = 3 * time.Second
	lan.b.m.ForwardWindow = 3 * time.Second
	if err := lan.a.m.Ensure(ctx, addr, time.Minute); err != nil {
		t.Fatalf("A: Ensure: %v", err)
	}
	if got, err := lan.ask(time.Second); got != "A" || err != nil {
		t.Fatalf("before the hand-off: answered by %q (%v), want A", got, err)
	}

	if err := lan.a.m.Release(ctx, addr); err != nil {
		t.Fatalf("A: Release: %v", err)
	}
	released := time.Now()
	answered := lan.askMeanwhile(lanVIP)
	// The client's SYN went to A, whose neighbour entry waits for an answer.
	waitFor(t, "A to resolve the VIP for the client's packet", func() bool {
		return strings.Contains(lan.a.neighbourState(t, lanVIP), "INCOMPLETE")
	})
	lan.claims.probe(t, 3)
	if c := lan.claims.since(released); len(c) > 0 {
		t.Fatalf("between the release and the next holder, %v answered for the VIP", c)
	}

	addr.Epoch = 2
	if err := lan.b.m.Ensure(ctx, addr, time.Minute); err != nil {
		t.Fatalf("B: Ensure: %v", err)
	}
	held := time.Now()
	got := <-answered
	if got.err != nil || got.from != "B" || got.retransmits > 0 {
		t.Fatalf("a connection opened during the hand-off: answered by %q (%v) after %d retransmissions, want B at the first SYN",
			got.from, got.err, got.retransmits)
	}
	t.Logf("a connection opened %v after A released the VIP waited in A's neighbour queue; B answered it %v after it held the VIP",
		held.Sub(released).Round(time.Millisecond), got.at.Sub(held).Round(time.Millisecond))

	lan.clientPointsAt(t, lan.a)
	if from, err := lan.ask(time.Second); from != "B" || err != nil {
		t.Errorf("a client whose cache names A: answered by %q (%v), want B through A", from, err)
	}
	lan.claims.probe(t, 3)
	byB := 0
	for _, c := range lan.claims.since(released) {
		if c.mac == lan.a.mac.String() {
			t.Errorf("A answered for the VIP at %s, after it released it", c.at.Format(time.StampMicro))
		}
		if c.mac == lan.b.mac.String() {
			byB++
		}
	}
	if byB == 0 {
		t.Error("the client never heard B claim the VIP: the watch sees nothing")
	}

	// Failback within A's window: B releases and forwards, A stops
	// forwarding before it holds the VIP again, and answers itself.
	if err := lan.b.m.Release(ctx, addr); err != nil {
		t.Fatalf("B: Release: %v", err)
	}
	failback := time.Now()
	addr.Epoch = 3
	if err := lan.a.m.Ensure(ctx, addr, time.Minute); err != nil {
		t.Fatalf("A: Ensure again: %v", err)
	}
	if since := failback.Sub(released); since >= lan.a.m.ForwardWindow {
		t.Fatalf("the failback came %v after A's release, past its forwarding window: it checks nothing", since)
	}
	for _, via := range []*lanNode{lan.a, lan.b} {
		lan.clientPointsAt(t, via)
		if from, err := lan.ask(time.Second); from != "A" || err != nil {
			t.Errorf("after the failback, through %s: answered by %q (%v), want A", via.name, from, err)
		}
	}
	for _, c := range lan.claims.since(failback) {
		if c.mac == lan.b.mac.String() {
			t.Errorf("B answered for the VIP at %s, after it released it", c.at.Format(time.StampMicro))
		}
	}

	// A hands off again while B still forwards: A's neighbour entry from
	// before it held the VIP names B, and B's names A. A must wait for the
	// next announcement, not send the copies to B and back.
	if err := lan.a.m.Release(ctx, addr); err != nil {
		t.Fatalf("A: Release again: %v", err)
	}
	again := time.Now()
	lan.clientPointsAt(t, lan.a)
	answered = lan.askMeanwhile(lanVIP)
	waitFor(t, "A to resolve the VIP afresh for the client's packet", func() bool {
		return strings.Contains(lan.a.neighbourState(t, lanVIP), "INCOMPLETE")
	})
	addr.Epoch = 4
	if err := lan.b.m.Ensure(ctx, addr, time.Minute); err != nil {
		t.Fatalf("B: Ensure again: %v", err)
	}
	if got := <-answered; got.err != nil || got.from != "B" || got.retransmits > 0 {
		t.Errorf("a connection opened during the second hand-off: answered by %q (%v) after %d retransmissions, want B at the first SYN",
			got.from, got.err, got.retransmits)
	}

	// Once A's window is over, A drops what still reaches it for the VIP.
	waitFor(t, "A to stop forwarding after its window", func() bool {
		lan.clientPointsAt(t, lan.a)
		_, err := lan.ask(200 * time.Millisecond)
		return err != nil
	})
	t.Logf("A forwarded for %v after its release (window %v)", time.Since(again).Round(10*time.Millisecond), lan.a.m.ForwardWindow)
}

// TestNodeHandOffForwardsIPv6: as TestNodeHandOffForwards for an IPv6
// address: a connection opened during the hand-off reaches A, which
// resolves the address for it, and B answers it once it holds the address.
func TestNodeHandOffForwardsIPv6(t *testing.T) {
	lan := newHandOffLAN(t)
	ctx := context.Background()
	addr := Address{IP: lanVIP6, Interface: "lan", FailoverIP: "shop/www", Epoch: 1}
	if err := lan.a.m.Ensure(ctx, addr, time.Minute); err != nil {
		t.Fatalf("A: Ensure: %v", err)
	}
	// (The first IPv6 connection on this LAN now and then needs a
	// retransmitted SYN: more time than over IPv4.)
	if got, _, err := lan.askCounting(lanVIP6, 3*time.Second); got != "A" || err != nil {
		t.Fatalf("before the hand-off: answered by %q (%v), want A", got, err)
	}
	if err := lan.a.m.Release(ctx, addr); err != nil {
		t.Fatalf("A: Release: %v", err)
	}
	answered := lan.askMeanwhile(lanVIP6)
	waitFor(t, "A to resolve the VIP for the client's packet", func() bool {
		return strings.Contains(lan.a.neighbourState(t, lanVIP6), "INCOMPLETE")
	})
	addr.Epoch = 2
	if err := lan.b.m.Ensure(ctx, addr, time.Minute); err != nil {
		t.Fatalf("B: Ensure: %v", err)
	}
	got := <-answered
	if got.err != nil || got.from != "B" {
		t.Fatalf("a connection opened during the hand-off: answered by %q (%v), want B", got.from, got.err)
	}
	// Not asserted: about one run in six, B answers only the client's
	// retransmitted SYN, though A's entry follows B's advertisement; the
	// cause is not known yet.
	t.Logf("B answered after %d retransmissions of the client", got.retransmits)
}

// claimWatch records, from the client's link, every ARP packet that claims
// an address: a reply or a gratuitous ARP with it as the sender.
type claimWatch struct {
	fd      int
	ifindex int
	mac     net.HardwareAddr
	ip      netip.Addr

	mu     sync.Mutex
	claims []claim
}

type claim struct {
	mac string
	at  time.Time
}

func (c claim) String() string { return c.mac + " at " + c.at.Format(time.StampMicro) }

func watchClaims(t *testing.T, client *netnstest.NS, ip netip.Addr) *claimWatch {
	t.Helper()
	fd, err := client.PacketSocket("lan", unix.SOCK_DGRAM, unix.ETH_P_ARP)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	ifi := sa.(*unix.SockaddrLinklayer).Ifindex
	var mac net.HardwareAddr
	if err := client.Do(func() error {
		i, err := net.InterfaceByIndex(ifi)
		if err == nil {
			mac = i.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	w := &claimWatch{fd: fd, ifindex: ifi, mac: mac, ip: ip}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { w.read(stop) })
	t.Cleanup(func() { close(stop); wg.Wait(); unix.Close(fd) })
	return w
}

func (w *claimWatch) read(stop chan struct{}) {
	b := make([]byte, 1500)
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, _, err := unix.Recvfrom(w.fd, b, 0)
		if err != nil || n < 28 || binary.BigEndian.Uint16(b[2:]) != unix.ETH_P_IP {
			continue
		}
		if netip.AddrFrom4([4]byte(b[14:18])) == w.ip {
			w.mu.Lock()
			w.claims = append(w.claims, claim{mac: net.HardwareAddr(b[8:14]).String(), at: time.Now()})
			w.mu.Unlock()
		}
	}
}

// probe asks n times who has the address, each time reading the answers
// for up to 50 ms.
func (w *claimWatch) probe(t *testing.T, n int) {
	t.Helper()
	b := make([]byte, 28)
	binary.BigEndian.PutUint16(b[0:], 1)
	binary.BigEndian.PutUint16(b[2:], unix.ETH_P_IP)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], 1) // request
	copy(b[8:], w.mac)
	client := lanClient.As4()
	copy(b[14:], client[:])
	target := w.ip.As4()
	copy(b[24:], target[:])
	to := &unix.SockaddrLinklayer{Ifindex: w.ifindex, Protocol: htons(unix.ETH_P_ARP), Halen: 6}
	copy(to.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	for range n {
		sent := time.Now()
		if err := unix.Sendto(w.fd, b, 0, to); err != nil {
			t.Fatalf("sending ARP: %v", err)
		}
		// A timeout is the usual outcome: nobody answered.
		_ = wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 50*time.Millisecond, false,
			func(context.Context) (bool, error) { return len(w.since(sent)) > 0, nil })
	}
}

// since returns the claims seen after t.
func (w *claimWatch) since(t time.Time) []claim {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []claim
	for _, c := range w.claims {
		if c.at.After(t) {
			out = append(out, c)
		}
	}
	return out
}

// TestNodeHandOffWaitsForQuiet: a planned hand-off removes the address,
// beside the caller, once no handshake to it is in flight, or after
// QuietWait; the node holds it meanwhile and Release says ErrReleasing.
// Open connections hold nothing: they are kept (TestNodeHandOffKeepsConnections).
// A fence (no HandOff) removes it at once, also while a hand-off waits,
// and a node that holds the address again stops waiting.
func TestNodeHandOffWaitsForQuiet(t *testing.T) {
	lan := newHandOffLAN(t)
	ctx := logr.NewContext(context.Background(), testr.New(t))
	a := lan.a
	holdPort := a.holdConnections(t)
	a.m.QuietWait = 2 * time.Second
	epoch := int64(0)
	grant := time.Minute
	// halfOpens are the half-open handshakes of the subtests, each
	// completed once the node holds the address again, so that it holds
	// no later wait.
	var halfOpens []*halfOpen
	halfOpenTo := func() *halfOpen {
		h := lan.newHalfOpen(t, holdPort)
		halfOpens = append(halfOpens, h)
		return h
	}
	hold := func(t *testing.T, handOff bool) Address {
		t.Helper()
		epoch++
		addr := Address{IP: lanVIP, Interface: "lan", FailoverIP: "shop/www", Epoch: epoch, HandOff: handOff}
		if err := a.m.Ensure(ctx, addr, grant); err != nil {
			t.Fatalf("Ensure: %v", err)
		}
		for _, h := range halfOpens {
			h.finish(t)
		}
		halfOpens = halfOpens[:0]
		return addr
	}
	// releaseUntilDone calls Release, as the agent's passes do, until it
	// is done, and returns how long that took.
	releaseUntilDone := func(t *testing.T, addr Address) time.Duration {
		t.Helper()
		start := time.Now()
		var err error
		waitFor(t, "the release", func() bool {
			err = a.m.Release(ctx, addr)
			return !errors.Is(err, ErrReleasing)
		})
		if err != nil {
			t.Fatalf("Release: %v", err)
		}
		if len(a.addrs(t)) > 0 {
			t.Fatal("released, but the address is still on the link")
		}
		return time.Since(start)
	}

	t.Run("fence: at once", func(t *testing.T) {
		half := halfOpenTo()
		addr := hold(t, false)
		half.open(t, a)
		if err := a.m.Release(ctx, addr); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if len(a.addrs(t)) > 0 {
			t.Error("a fence left the address on the link")
		}
	})
	t.Run("hand-off: once the handshake ends, not the open connection", func(t *testing.T) {
		half := halfOpenTo()
		addr := hold(t, true)
		lan.dialHeld(t, holdPort)
		half.open(t, a)
		if err := a.m.Release(ctx, addr); !errors.Is(err, ErrReleasing) || len(a.addrs(t)) == 0 {
			t.Fatalf("Release with a handshake in flight: %v, address on the link: %v; want ErrReleasing and the address kept", err, len(a.addrs(t)) > 0)
		}
		// Meanwhile the node serves, its packets already passed on to
		// its own stack.
		if from, err := lan.ask(time.Second); from != "A" || err != nil {
			t.Errorf("during the hand-off's wait: answered by %q (%v), want A", from, err)
		}
		completed := time.Now()
		half.finish(t)
		waitFor(t, "the address to go once the handshake ended", func() bool { return len(a.addrs(t)) == 0 })
		t.Logf("address gone %v after the handshake ended, a connection still open", time.Since(completed).Round(time.Millisecond))
		releaseUntilDone(t, addr)
	})
	t.Run("hand-off: no longer than QuietWait", func(t *testing.T) {
		half := halfOpenTo()
		addr := hold(t, true)
		half.open(t, a)
		if took := releaseUntilDone(t, addr); took < a.m.QuietWait || took > 2*a.m.QuietWait {
			t.Errorf("released after %v with a handshake in flight, want about QuietWait (%v)", took, a.m.QuietWait)
		}
	})
	t.Run("hand-off: not past the grant", func(t *testing.T) {
		grant = 400 * time.Millisecond
		defer func() { grant = time.Minute }()
		half := halfOpenTo()
		addr := hold(t, true)
		granted := time.Now()
		half.open(t, a)
		if err := a.m.Release(ctx, addr); !errors.Is(err, ErrReleasing) {
			t.Fatalf("hand-off: %v, want ErrReleasing", err)
		}
		waitFor(t, "the address to go", func() bool { return len(a.addrs(t)) == 0 })
		// Seen by polling: the hand-off aims at grantMargin before the end.
		gone := time.Since(granted)
		t.Logf("address gone %v after a grant of %v, with a handshake in flight", gone.Round(time.Millisecond), grant)
		if gone > a.m.QuietWait/2 {
			t.Errorf("address gone %v after a grant of %v: the hand-off waited past it, for QuietWait (%v)", gone, grant, a.m.QuietWait)
		}
		releaseUntilDone(t, addr)
	})
	t.Run("a fence does not wait for a hand-off", func(t *testing.T) {
		half := halfOpenTo()
		addr := hold(t, true)
		half.open(t, a)
		if err := a.m.Release(ctx, addr); !errors.Is(err, ErrReleasing) {
			t.Fatalf("hand-off: %v, want ErrReleasing", err)
		}
		addr.HandOff = false
		if err := a.m.Release(ctx, addr); err != nil || len(a.addrs(t)) > 0 {
			t.Errorf("fence during a hand-off: %v, address on the link: %v", err, len(a.addrs(t)) > 0)
		}
	})
	t.Run("holding again stops the hand-off", func(t *testing.T) {
		half := halfOpenTo()
		addr := hold(t, true)
		half.open(t, a)
		if err := a.m.Release(ctx, addr); !errors.Is(err, ErrReleasing) {
			t.Fatalf("hand-off: %v, want ErrReleasing", err)
		}
		if err := a.m.Ensure(ctx, addr, time.Minute); err != nil {
			t.Fatal(err)
		}
		if a.m.handOffs[lanVIP] != nil {
			t.Error("Ensure left the hand-off waiting")
		}
		if set := a.ns.MustRun(t, "nft", "list", "set", "ip", handoff.TableName, "forward4"); strings.Contains(set, lanVIP.String()) {
			t.Errorf("Ensure left the address forwarded:\n%s", set)
		}
		if kept := a.ns.MustRun(t, "ip", "addr", "show", "dev", "lo"); strings.Contains(kept, lanVIP.String()) {
			t.Errorf("Ensure left a kept copy of the address:\n%s", kept)
		}
		half.finish(t)
		addr.HandOff = false
		if err := a.m.Release(ctx, addr); err != nil {
			t.Fatal(err)
		}
	})
}

// TestNodeHandOffKeepsConnections: a connection open to the VIP when a
// planned hand-off removes it from A's link goes on, answered by A, while
// A answers no ARP for the VIP and passes new connections on to B. The
// hand-off does not wait for it. Then B holds the VIP and answers the new
// connection; once A's window ends, A's kept copy goes.
func TestNodeHandOffKeepsConnections(t *testing.T) {
	lan := newHandOffLAN(t)
	ctx := context.Background()
	a := lan.a
	// Without the kept copy the hand-off would wait for the connection:
	// a minute, past waitFor's patience.
	a.m.QuietWait = time.Minute
	a.m.ForwardWindow = 3 * time.Second
	port := a.listen(t, 0, func(c net.Conn) {
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			fmt.Fprintf(c, "A:%s", line)
		}
	})
	addr := Address{IP: lanVIP, Interface: "lan", FailoverIP: "shop/www", Epoch: 1, HandOff: true}
	if err := a.m.Ensure(ctx, addr, time.Minute); err != nil {
		t.Fatalf("A: Ensure: %v", err)
	}
	conn := lan.dialHeld(t, port)
	exchange := func(what string) {
		t.Helper()
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintln(conn, what)
		got, err := bufio.NewReader(conn).ReadString('\n')
		if want := "A:" + what + "\n"; got != want || err != nil {
			t.Fatalf("on the open connection: %q (%v), want %q", got, err, want)
		}
	}
	exchange("before")

	released := time.Now()
	waitFor(t, "the hand-off, with a connection open", func() bool {
		return !errors.Is(a.m.Release(ctx, addr), ErrReleasing)
	})
	gone := time.Now()
	if len(a.addrs(t)) > 0 {
		t.Fatal("released, but the address is still on A's link")
	}
	t.Logf("A handed off the VIP %v after the release began, one connection open", gone.Sub(released).Round(time.Millisecond))
	exchange("after the address went")

	answered := lan.askMeanwhile(lanVIP)
	waitFor(t, "A to resolve the VIP for the new connection", func() bool {
		return strings.Contains(a.neighbourState(t, lanVIP), "INCOMPLETE")
	})
	lan.claims.probe(t, 3)
	if c := lan.claims.since(gone); len(c) > 0 {
		t.Fatalf("after A's hand-off and before B held the VIP, %v answered for it", c)
	}
	exchange("while nobody answers ARP")

	addr.Epoch, addr.HandOff = 2, false
	if err := lan.b.m.Ensure(ctx, addr, time.Minute); err != nil {
		t.Fatalf("B: Ensure: %v", err)
	}
	if got := <-answered; got.err != nil || got.from != "B" || got.retransmits > 0 {
		t.Fatalf("a connection opened after the hand-off: answered by %q (%v) after %d retransmissions, want B at the first SYN", got.from, got.err, got.retransmits)
	}
	for _, c := range lan.claims.since(gone) {
		if c.mac == a.mac.String() {
			t.Errorf("A answered for the VIP at %s, after it handed it off", c.at.Format(time.StampMicro))
		}
	}
	if recorded, err := a.m.record().load(); err != nil || !slices.Contains(recorded, lanVIP) {
		t.Errorf("while A keeps a copy of the VIP, its record holds %v (%v): a restart would not know the copy", recorded, err)
	}
	waitFor(t, "A's kept copy to go with its window, and its record's entry", func() bool {
		recorded, err := a.m.record().load()
		return err == nil && !slices.Contains(recorded, lanVIP) &&
			!strings.Contains(a.ns.MustRun(t, "ip", "addr", "show", "dev", "lo"), lanVIP.String())
	})
	if routes := a.ns.MustRun(t, "ip", "route", "show", "table", "all"); strings.Contains(routes, lanVIP.String()) {
		t.Errorf("A's kept copy left a route:\n%s", routes)
	}
}

// halfOpen is a connection from the client to the VIP whose handshake
// never completes on the node: the client's ACKs from its local port are
// dropped in its own namespace, so the node keeps it as a handshake in
// flight.
type halfOpen struct {
	lan         *handOffLAN
	table       string
	local, port int
	conn        net.Conn
}

// halfOpenPorts are the client's local ports of half-open connections,
// one each, so that each has its own rule.
var halfOpenPorts atomic.Int32

func init() { halfOpenPorts.Store(21000) }

// newHalfOpen prepares a half-open connection to port: the rule goes in
// first, since the handshake starts at the dial.
func (lan *handOffLAN) newHalfOpen(t *testing.T, port int) *halfOpen {
	t.Helper()
	h := &halfOpen{lan: lan, table: "wfhalf" + randomHex(t, 3), port: port, local: int(halfOpenPorts.Add(1))}
	c := lan.client
	c.MustRun(t, "nft", "add", "table", "ip", h.table)
	c.MustRun(t, "nft", "add", "chain", "ip", h.table, "out", "{ type filter hook output priority 0 ; }")
	c.MustRun(t, "nft", "add", "rule", "ip", h.table, "out", "ip", "daddr", lanVIP.String(), "tcp", "sport", fmt.Sprint(h.local),
		"tcp", "flags", "&", "(syn|ack)", "==", "ack", "drop")
	return h
}

// open dials and waits until n holds the handshake in flight.
func (h *halfOpen) open(t *testing.T, n *lanNode) {
	t.Helper()
	err := h.lan.client.Do(func() (err error) {
		d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{Port: h.local}}
		h.conn, err = d.Dial("tcp4", netip.AddrPortFrom(lanVIP, uint16(h.port)).String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a handshake in flight on "+n.name, func() bool {
		k, err := n.m.inFlight(lanVIP, handshakeStates)
		return err == nil && k > 0
	})
}

// finish lets the handshake complete (the node must hold the VIP) and
// closes the connection.
func (h *halfOpen) finish(t *testing.T) {
	t.Helper()
	if h.conn == nil {
		return // not open yet, or finished
	}
	h.lan.client.MustRun(t, "nft", "delete", "table", "ip", h.table)
	_, _ = h.conn.Write([]byte{'x'})
	h.conn.Close()
	h.conn = nil
}

// addrs returns the VIP's addresses on the node's link.
func (n *lanNode) addrs(t *testing.T) []netlink.Addr {
	t.Helper()
	link, err := n.m.Handle.LinkByName("lan")
	if err != nil {
		t.Fatal(err)
	}
	found, err := findAddr(n.m.Handle, link, lanVIP)
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// holdConnections accepts connections to any address of the node on a
// port it returns, and keeps each open until the client ends it.
func (n *lanNode) holdConnections(t *testing.T) int {
	t.Helper()
	return n.listen(t, 0, func(c net.Conn) {
		defer c.Close()
		_, _ = c.Read(make([]byte, 1))
	})
}

// dialHeld opens a connection from the client to the VIP on port.
func (lan *handOffLAN) dialHeld(t *testing.T, port int) net.Conn {
	t.Helper()
	var c net.Conn
	if err := lan.client.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp4", netip.AddrPortFrom(lanVIP, uint16(port)).String(), time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestNodeHandOffUnderLoad: the client opens a new connection to the VIP
// every 10 ms (1 s allowed for each, the server thinking 5 ms before it
// answers, so that some are always open), while A hands the VIP off to B
// and B holds it a controller's round trip (150 ms) after A released it.
// No request fails, and A answers no ARP for the VIP once it went.
func TestNodeHandOffUnderLoad(t *testing.T) {
	lan := newHandOffLAN(t)
	ctx := context.Background()
	const port = lanPort + 1
	for _, n := range []*lanNode{lan.a, lan.b} {
		n.listen(t, port, func(c net.Conn) {
			defer c.Close()
			if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
			fmt.Fprintln(c, n.name)
		})
	}
	addr := Address{IP: lanVIP, Interface: "lan", FailoverIP: "shop/www", Epoch: 1, HandOff: true}
	if err := lan.a.m.Ensure(ctx, addr, time.Minute); err != nil {
		t.Fatalf("A: Ensure: %v", err)
	}
	load := lan.startLoad(netip.AddrPortFrom(lanVIP, port), 10*time.Millisecond)
	time.Sleep(300 * time.Millisecond)

	waitFor(t, "A's hand-off", func() bool { return !errors.Is(lan.a.m.Release(ctx, addr), ErrReleasing) })
	gone := time.Now()
	time.Sleep(150 * time.Millisecond)
	addr.Epoch, addr.HandOff = 2, false
	if err := lan.b.m.Ensure(ctx, addr, time.Minute); err != nil {
		t.Fatalf("B: Ensure: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	byNode, failures := load.stop()

	t.Logf("answered by %v; %d failed", byNode, len(failures))
	for _, f := range failures {
		t.Errorf("failed request: %v", f)
	}
	if byNode["A"] == 0 || byNode["B"] == 0 {
		t.Errorf("answers by node %v: the load did not span the hand-off", byNode)
	}
	lan.claims.probe(t, 3)
	for _, c := range lan.claims.since(gone) {
		if c.mac == lan.a.mac.String() {
			t.Errorf("A answered for the VIP at %s, after it handed it off", c.at.Format(time.StampMicro))
		}
	}
}

// clientLoad is a steady load of new connections from the client.
type clientLoad struct {
	stopped chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	by      map[string]int
	failed  []error
}

// startLoad opens a connection to to every interval, sends a line and
// reads the answering node's name, allowing each a second.
func (lan *handOffLAN) startLoad(to netip.AddrPort, interval time.Duration) *clientLoad {
	l := &clientLoad{stopped: make(chan struct{}), by: map[string]int{}}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-l.stopped:
				return
			case <-tick.C:
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				from, err := lan.request(to)
				l.mu.Lock()
				defer l.mu.Unlock()
				if err != nil {
					l.failed = append(l.failed, fmt.Errorf("at %s: %w", time.Now().Format(time.StampMicro), err))
					return
				}
				l.by[from]++
			}()
		}
	}()
	return l
}

// stop ends the load, waits for the requests under way, and returns the
// answers by node and the failures.
func (l *clientLoad) stop() (map[string]int, []error) {
	close(l.stopped)
	l.wg.Wait()
	return l.by, l.failed
}

// request sends one request to to on a new connection from the client.
func (lan *handOffLAN) request(to netip.AddrPort) (string, error) {
	var from string
	err := lan.client.Do(func() error {
		c, err := net.DialTimeout("tcp", to.String(), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := fmt.Fprintln(c, "GET"); err != nil {
			return err
		}
		from, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	return strings.TrimSpace(from), err
}
