package deadman

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/webfarm/webfarm/internal/netnstest"
)

var (
	nodeIP  = netip.MustParseAddr("10.233.0.1")
	peerIP  = netip.MustParseAddr("10.233.0.2")
	nodeIP6 = netip.MustParseAddr("fd00:233::1")
	peerIP6 = netip.MustParseAddr("fd00:233::2")
	vip4    = netip.MustParseAddr("10.233.0.100")
	vip6    = netip.MustParseAddr("fd00:233::100")
)

const arpReply = 2

// probeTimeout bounds one probe: an answer later than that counts as none.
const probeTimeout = 100 * time.Millisecond

// testNet is a node namespace holding vip4 and vip6 on a veth, and a peer
// namespace at the other end that probes them.
type testNet struct {
	node, peer     *netnstest.NS
	link, peerLink string
	nodeMAC        net.HardwareAddr
	arp            *arpProber
	ndp            *ndp.Conn
	peerMAC        net.HardwareAddr
}

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	n := &testNet{node: netnstest.New(t), peer: netnstest.New(t), link: "dma0", peerLink: "dmb0"}
	if err := netnstest.Link(n.node, n.link, nodeIP.String()+"/24", n.peer, n.peerLink, peerIP.String()+"/24"); err != nil {
		t.Fatal(err)
	}
	n.node.MustRun(t, "ip", "-6", "addr", "add", nodeIP6.String()+"/64", "dev", n.link, "nodad")
	n.peer.MustRun(t, "ip", "-6", "addr", "add", peerIP6.String()+"/64", "dev", n.peerLink, "nodad")
	n.node.MustRun(t, "ip", "addr", "add", vip4.String()+"/32", "dev", n.link)
	n.node.MustRun(t, "ip", "-6", "addr", "add", vip6.String()+"/128", "dev", n.link, "nodad")
	n.nodeMAC = n.linkMAC(t, n.node, n.link)
	n.peerMAC = n.linkMAC(t, n.peer, n.peerLink)
	n.arp = newARPProber(t, n.peer, n.peerLink, n.peerMAC, peerIP)
	err := n.peer.Do(func() error {
		ifi, err := net.InterfaceByName(n.peerLink)
		if err != nil {
			return err
		}
		n.ndp, _, err = ndp.Listen(ifi, ndp.UniqueLocal)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.ndp.Close() })
	return n
}

func (n *testNet) linkMAC(t *testing.T, ns *netnstest.NS, link string) net.HardwareAddr {
	t.Helper()
	h, err := ns.Handle()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName(link)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().HardwareAddr
}

// gate opens a gate inside the node namespace; it is closed, not removed,
// when t ends.
func (n *testNet) gate(t *testing.T) *Gate {
	t.Helper()
	h, err := netns.GetFromName(n.node.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	g, err := New(nftables.WithNetNSFd(int(h)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

// answersARP sends an ARP request for ip from the peer and reports whether
// a reply came within probeTimeout.
func (n *testNet) answersARP(t *testing.T, ip netip.Addr) bool {
	t.Helper()
	n.arp.send(t, arpRequest, ip)
	return n.arp.await(t, time.Now().Add(probeTimeout), arpReply, ip)
}

// answersNS sends a neighbour solicitation for ip from the peer and
// reports whether an advertisement for it came within probeTimeout.
func (n *testNet) answersNS(t *testing.T, ip netip.Addr) bool {
	t.Helper()
	if err := n.ndp.SetDeadline(time.Now().Add(probeTimeout)); err != nil {
		t.Fatal(err)
	}
	group, err := ndp.SolicitedNodeMulticast(ip)
	if err != nil {
		t.Fatal(err)
	}
	ns := &ndp.NeighborSolicitation{TargetAddress: ip, Options: []ndp.Option{
		&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: n.peerMAC},
	}}
	if err := n.ndp.WriteTo(ns, nil, group.WithZone(n.peerLink)); err != nil {
		t.Fatal(err)
	}
	for {
		m, _, _, err := n.ndp.ReadFrom()
		if !answered(t, err) {
			return false
		}
		if na, ok := m.(*ndp.NeighborAdvertisement); ok && na.TargetAddress == ip {
			return true
		}
	}
}

// connects opens a TCP connection from the peer to ip:port. The peer is
// given the node's link address first, so that only the gate's rule on
// traffic decides, not neighbour discovery.
func (n *testNet) connects(t *testing.T, ip netip.Addr, port uint16) bool {
	t.Helper()
	n.peer.MustRun(t, "ip", "neigh", "replace", ip.String(), "lladdr", n.nodeMAC.String(), "dev", n.peerLink, "nud", "permanent")
	var conn net.Conn
	err := n.peer.Do(func() error {
		var err error
		conn, err = net.DialTimeout("tcp", netip.AddrPortFrom(ip, port).String(), probeTimeout)
		return err
	})
	if err == nil {
		conn.Close()
	}
	return answered(t, err)
}

// listen accepts, and closes at once, TCP connections to any address of
// the node; it returns the port.
func (n *testNet) listen(t *testing.T) uint16 {
	t.Helper()
	var ln net.Listener
	if err := n.node.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", "[::]:0")
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
			c.Close()
		}
	}()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// answered tells a probe's timeout (no answer) from a failure of the probe
// itself, which fails t.
func answered(t *testing.T, err error) bool {
	t.Helper()
	var ne net.Error
	switch {
	case err == nil:
		return true
	case errors.As(err, &ne) && ne.Timeout():
		return false
	default:
		t.Fatalf("probing: %v", err)
		return false
	}
}

// eventually polls cond every 10ms until it holds, failing t after 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 5*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// arpProber sends ARP requests and reads ARP packets on one link, through
// a packet socket that leaves the Ethernet header to the kernel.
type arpProber struct {
	fd      int
	ifindex int
	mac     net.HardwareAddr
	ip      netip.Addr
}

func newARPProber(t *testing.T, ns *netnstest.NS, link string, mac net.HardwareAddr, ip netip.Addr) *arpProber {
	t.Helper()
	fd, err := ns.PacketSocket(link, unix.SOCK_DGRAM, unix.ETH_P_ARP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return &arpProber{fd: fd, ifindex: sa.(*unix.SockaddrLinklayer).Ifindex, mac: mac, ip: ip}
}

// send broadcasts an ARP packet of operation op asking for target.
func (p *arpProber) send(t *testing.T, op uint16, target netip.Addr) {
	t.Helper()
	// Late answers to earlier requests must not count as answers to this one.
	for {
		if _, _, err := unix.Recvfrom(p.fd, make([]byte, 1500), unix.MSG_DONTWAIT); err != nil {
			break
		}
	}
	b := make([]byte, 28)
	binary.BigEndian.PutUint16(b[0:], 1) // Ethernet
	binary.BigEndian.PutUint32(b[2:], arpIPv4OverEthernet)
	binary.BigEndian.PutUint16(b[6:], op)
	copy(b[8:], p.mac)
	sender, tgt := p.ip.As4(), target.As4()
	copy(b[arpOffSenderIP:], sender[:])
	copy(b[arpOffTargetIP:], tgt[:])
	to := &unix.SockaddrLinklayer{Ifindex: p.ifindex, Protocol: htons(unix.ETH_P_ARP), Halen: 6}
	copy(to.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if err := unix.Sendto(p.fd, b, 0, to); err != nil {
		t.Fatalf("sending ARP: %v", err)
	}
}

// await reads ARP packets until one of operation op comes from sender,
// and reports whether one did before deadline.
func (p *arpProber) await(t *testing.T, deadline time.Time, op uint16, sender netip.Addr) bool {
	t.Helper()
	b := make([]byte, 1500)
	// Whatever arrived in time is read, even by a reader that runs late.
	for {
		n, _, err := unix.Recvfrom(p.fd, b, 0)
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
		case err != nil:
			t.Fatalf("reading ARP: %v", err)
		case n >= 28 && binary.BigEndian.Uint32(b[2:]) == arpIPv4OverEthernet &&
			binary.BigEndian.Uint16(b[arpOffOp:]) == op && netip.AddrFrom4([4]byte(b[arpOffSenderIP:arpOffSenderIP+4])) == sender:
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// htons converts to network byte order, as sockaddr_ll wants its protocol.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
