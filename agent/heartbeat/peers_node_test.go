package heartbeat

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/webfarm/webfarm/internal/netnstest"
)

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// pair is two namespaces joined by a veth, one agent address in each.
type pair struct {
	a, b         *netnstest.NS
	aIP, bIP     netip.Addr
	aLink, bLink string
}

func newPair(t *testing.T) pair {
	t.Helper()
	p := pair{a: netnstest.New(t), b: netnstest.New(t),
		aIP: netip.MustParseAddr("10.231.0.1"), bIP: netip.MustParseAddr("10.231.0.2")}
	// Unique names: the veth ends pass through the host's namespace.
	suffix := randomHex(t, 2)
	p.aLink, p.bLink = "hba"+suffix, "hbb"+suffix
	if err := netnstest.Link(p.a, p.aLink, p.aIP.String()+"/24", p.b, p.bLink, p.bIP.String()+"/24"); err != nil {
		t.Fatal(err)
	}
	return p
}

// peersIn binds node's Peers inside ns and runs it until stop is called or
// t ends.
func peersIn(t *testing.T, ns *netnstest.NS, node string, listen netip.AddrPort, key []byte) (p *Peers, stop func()) {
	t.Helper()
	err := ns.Do(func() error {
		var err error
		p, err = NewPeers(node, listen, nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	p.SetKey(key)
	p.SetSigner(nodeKey(node))
	return p, runPeers(t, p)
}

func TestNodePeersHeartbeats(t *testing.T) {
	n := newPair(t)
	port := uint16(7694)
	aAddr, bAddr := netip.AddrPortFrom(n.aIP, port), netip.AddrPortFrom(n.bIP, port)
	a, stopA := peersIn(t, n.a, "front1", aAddr, testKey)
	b, _ := peersIn(t, n.b, "front2", bAddr, testKey)
	meet(a, b)
	capture := captureUDP(t, n.b, n.bLink, n.aIP, port)
	const fip = "shop/www"

	started := time.Now()
	eventually(t, "both agents hear each other", func() bool {
		sendOrFail(t, a, "front2", Claim{FailoverIP: fip, Holding: true, SeenOwner: "front1", SeenEpoch: 3})
		sendOrFail(t, b, "front1", Claim{FailoverIP: fip, SeenOwner: "front1", SeenEpoch: 3})
		return len(a.View(fip)) == 1 && len(b.View(fip)) == 1
	})
	t.Logf("first heartbeat to both views, handshake included: %v", time.Since(started))

	// front2 confirms front1's ownership: its ack tells front1 which of its
	// own heartbeats the confirmation answers.
	book := &promiseBook{}
	b.SetPromises(book)
	eventually(t, "front2 confirms front1 with an ack", func() bool {
		sendOrFail(t, a, "front2", Claim{FailoverIP: fip, Holding: true, SeenOwner: "front1", SeenEpoch: 3})
		sendOrFail(t, b, "front1", Claim{FailoverIP: fip, SeenOwner: "front1", SeenEpoch: 3})
		v := a.View(fip)
		return len(v) == 1 && !v[0].Confirmed.IsZero()
	})
	if confirmed := a.View(fip)[0].Confirmed; confirmed.After(time.Now()) || len(book.made) == 0 {
		t.Errorf("confirmed at %v with promises %v, want a time already past and a promise made", confirmed, book.made)
	}

	fromA, fromB := b.View(fip)[0], a.View(fip)[0]
	if fromA.Node != "front1" || fromA.LastClaimed.IsZero() || fromA.SeenEpoch != 3 || fromA.SeenOwner != "front1" {
		t.Errorf("front2's view of front1 = %+v, want a holding claim at epoch 3", fromA)
	}
	if fromB.Node != "front2" || !fromB.LastClaimed.IsZero() || fromB.LastHeard.IsZero() {
		t.Errorf("front1's view of front2 = %+v, want heard, never claiming", fromB)
	}

	t.Run("replayed datagram", func(t *testing.T) {
		// front1 is quiet now: everything it sent was captured on the wire.
		settle(t, a, b)
		recorded := capture.last(t)
		view, stats := b.View(fip), b.Stats()
		resendFrom(t, n.a, n.aIP, bAddr, recorded)
		eventually(t, "front2 counts the replay", func() bool { return b.Stats().Replayed > stats.Replayed })
		if got := b.View(fip); !reflect.DeepEqual(got, view) {
			t.Errorf("view after the replay = %+v, want unchanged %+v", got, view)
		}
		if got := b.Stats().Accepted; got != stats.Accepted {
			t.Errorf("front2 accepted %d datagrams during the replay, want %d", got, stats.Accepted)
		}
	})
	t.Run("a failover address held on the link does not change the source", func(t *testing.T) {
		// As agent/vip adds it: host prefix, no prefix route.
		n.a.MustRun(t, "ip", "addr", "add", "10.231.0.100/32", "dev", n.aLink, "noprefixroute")
		stats := b.Stats()
		eventually(t, "front2 accepts front1's heartbeats", func() bool {
			sendOrFail(t, a, "front2", Claim{FailoverIP: fip, Holding: true, SeenOwner: "front1", SeenEpoch: 3})
			return b.Stats().Accepted > stats.Accepted
		})
		if got := b.Stats().WrongSource; got != stats.WrongSource {
			t.Errorf("%d heartbeats left from the failover address", got-stats.WrongSource)
		}
	})
	t.Run("replay after the sender restarted", func(t *testing.T) {
		recorded := capture.last(t)
		stopA()
		restarted, _ := peersIn(t, n.a, "front1", aAddr, testKey)
		meet(restarted, b)
		before := b.View(fip)[0].LastHeard
		eventually(t, "front2 hears front1's new boot", func() bool {
			sendOrFail(t, restarted, "front2", Claim{FailoverIP: fip, SeenOwner: "front1", SeenEpoch: 3})
			return b.View(fip)[0].LastHeard.After(before)
		})
		settleAll(t, b, a.seq.Load()+restarted.seq.Load()+1) // and the first replay
		view, stats := b.View(fip), b.Stats()
		resendFrom(t, n.a, n.aIP, bAddr, recorded)
		eventually(t, "front2 challenges the old boot's datagram", func() bool { return b.Stats().Challenged > stats.Challenged })
		if got := b.View(fip); !reflect.DeepEqual(got, view) {
			t.Errorf("view after replaying the old boot = %+v, want unchanged %+v", got, view)
		}
		if got := b.Stats().Accepted; got != stats.Accepted {
			t.Errorf("front2 accepted %d datagrams during the replay, want %d", got, stats.Accepted)
		}
	})
	t.Run("datagram from another address of front1's namespace", func(t *testing.T) {
		other := netip.MustParseAddr("10.231.0.3")
		n.a.MustRun(t, "ip", "addr", "add", other.String()+"/24", "dev", n.aLink)
		recorded := capture.last(t)
		view, stats := b.View(fip), b.Stats()
		resendFrom(t, n.a, other, bAddr, recorded)
		eventually(t, "front2 counts the wrong source", func() bool { return b.Stats().WrongSource > stats.WrongSource })
		if got := b.View(fip); !reflect.DeepEqual(got, view) {
			t.Errorf("view after a datagram from the wrong address = %+v, want unchanged %+v", got, view)
		}
		if got := b.Stats(); got.Replayed != stats.Replayed || got.Accepted != stats.Accepted {
			t.Errorf("stats %+v after %+v: the datagram went past the address check", got, stats)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		intruder, _ := peersIn(t, n.a, "front3", netip.AddrPortFrom(n.aIP, port+1), otherKey)
		intruder.SetMembership(Membership{Fronts: map[string]netip.AddrPort{"front2": bAddr}})
		before := b.Stats().Unauthenticated
		eventually(t, "front2 refuses the intruder", func() bool {
			sendOrFail(t, intruder, "front2", Claim{FailoverIP: fip, Holding: true})
			return b.Stats().Unauthenticated >= before+3
		})
		for _, p := range b.View(fip) {
			if p.Node == "front3" {
				t.Errorf("front2 heard the intruder: %+v", p)
			}
		}
	})
	t.Run("a front speaking for another", func(t *testing.T) {
		// front3 holds the shared key and sends from front1's address, as
		// front1, but signs with its own key: it cannot sign as front1.
		forger, _ := peersIn(t, n.a, "front1", netip.AddrPortFrom(n.aIP, port+2), testKey)
		forger.SetSigner(nodeKey("front3"))
		forger.SetMembership(Membership{Fronts: map[string]netip.AddrPort{"front2": bAddr}})
		view, stats := b.View(fip), b.Stats()
		eventually(t, "front2 refuses the forged signature", func() bool {
			sendOrFail(t, forger, "front2", Claim{FailoverIP: fip, SeenOwner: "front1", SeenEpoch: 1 << 40})
			return b.Stats().BadSignature >= stats.BadSignature+3
		})
		if got := b.View(fip); !reflect.DeepEqual(got, view) {
			t.Errorf("view after forged datagrams = %+v, want unchanged %+v", got, view)
		}
		if got := b.Stats(); got.Accepted != stats.Accepted || got.Challenged != stats.Challenged || got.Replayed != stats.Replayed {
			t.Errorf("stats %+v after %+v: a forged datagram went past the signature check", got, stats)
		}
	})
}

func sendOrFail(t *testing.T, p *Peers, node string, claims ...Claim) {
	t.Helper()
	if err := p.Send([]string{node}, claims); err != nil {
		t.Fatal(err)
	}
}

// resendFrom sends raw bytes from an ephemeral socket in ns, as an attacker
// with a recording would.
func resendFrom(t *testing.T, ns *netnstest.NS, ip netip.Addr, to netip.AddrPort, raw []byte) {
	t.Helper()
	err := ns.Do(func() error {
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = conn.WriteToUDPAddrPort(raw, to)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// capture records the payloads of the IPv4 UDP datagrams from src to port
// that cross link, read from a packet socket inside ns: what an attacker on
// the wire would see.
type capture struct {
	mu       sync.Mutex
	payloads [][]byte
}

func captureUDP(t *testing.T, ns *netnstest.NS, link string, src netip.Addr, port uint16) *capture {
	t.Helper()
	fd, err := ns.PacketSocket(link, unix.SOCK_DGRAM, unix.ETH_P_IP)
	if err != nil {
		t.Fatal(err)
	}
	c := &capture{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { c.read(fd, src, port, stop) })
	t.Cleanup(func() { close(stop); wg.Wait(); unix.Close(fd) })
	return c
}

func (c *capture) read(fd int, src netip.Addr, port uint16, stop chan struct{}) {
	buf := make([]byte, 65536)
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
		if payload, ok := udpPayload(buf[:n], src, port); ok {
			c.mu.Lock()
			c.payloads = append(c.payloads, append([]byte(nil), payload...))
			c.mu.Unlock()
		}
	}
}

func (c *capture) last(t *testing.T) []byte {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.payloads) == 0 {
		t.Fatal("captured no datagram")
	}
	return c.payloads[len(c.payloads)-1]
}

// udpPayload returns the payload of an IPv4 UDP packet from src to port.
func udpPayload(pkt []byte, src netip.Addr, port uint16) ([]byte, bool) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != unix.IPPROTO_UDP {
		return nil, false
	}
	ihl := int(pkt[0]&0x0f) * 4
	if len(pkt) < ihl+8 || netip.AddrFrom4([4]byte(pkt[12:16])) != src || binary.BigEndian.Uint16(pkt[ihl+2:]) != port {
		return nil, false
	}
	return pkt[ihl+8:], true
}

// TestNodePeersListenOnTheirOwnAddressOnly: bound to the node's address,
// the peer port takes no datagram sent to another address of the node, such
// as a failover IP the node holds.
func TestNodePeersListenOnTheirOwnAddressOnly(t *testing.T) {
	n := newPair(t)
	port := uint16(7694)
	a, _ := peersIn(t, n.a, "front1", netip.AddrPortFrom(n.aIP, port), testKey)
	bAddr := netip.AddrPortFrom(n.bIP, port)
	b, _ := peersIn(t, n.b, "front2", bAddr, testKey)
	meet(a, b)
	a.SetMembership(Membership{Fronts: map[string]netip.AddrPort{"front2": bAddr}, FailoverIPs: testFIPs})
	// As agent/vip adds a failover IP: host prefix, no prefix route.
	held := netip.MustParseAddr("10.231.0.100")
	n.b.MustRun(t, "ip", "addr", "add", held.String()+"/32", "dev", n.bLink, "noprefixroute")
	// A sender front2 does not know: whatever of it front2 reads, it
	// counts as UnknownSender, which front1's datagrams never are.
	stranger, _ := peersIn(t, n.a, "front9", netip.AddrPortFrom(n.aIP, port+1), testKey)
	stranger.SetMembership(Membership{Fronts: map[string]netip.AddrPort{"front2": netip.AddrPortFrom(held, port)}, FailoverIPs: testFIPs})
	capture := captureUDP(t, n.b, n.bLink, n.aIP, port)
	const fip = "shop/www"

	before := b.Stats()
	eventually(t, "datagrams to the held address reach front2's link", func() bool {
		sendOrFail(t, stranger, "front2", Claim{FailoverIP: fip, Holding: true, SeenOwner: "front9", SeenEpoch: 3})
		capture.mu.Lock()
		defer capture.mu.Unlock()
		return len(capture.payloads) >= 3
	})
	// Then front1 to front2's own address: once front2 has heard it, the
	// socket was read past anything queued before.
	eventually(t, "front2 hears front1 at its own address", func() bool {
		sendOrFail(t, a, "front2", Claim{FailoverIP: fip, Holding: true, SeenOwner: "front1", SeenEpoch: 3})
		return len(b.View(fip)) == 1
	})
	if got := b.Stats().UnknownSender - before.UnknownSender; got != 0 {
		t.Errorf("front2 read %d datagrams sent to %s, an address it does not listen on", got, held)
	}
}
