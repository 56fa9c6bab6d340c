package heartbeat

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/webfarm/webfarm/agent/ownership"
)

var loopback = netip.MustParseAddrPort("127.0.0.1:0")

// startPeers binds node's Peers on loopback, runs its receive loop and stops
// it when t ends.
func startPeers(t *testing.T, node string, clk *clocktesting.FakeClock, key []byte) *Peers {
	t.Helper()
	p, err := NewPeers(node, loopback, clk)
	if err != nil {
		t.Fatal(err)
	}
	p.SetKey(key)
	p.SetSigner(nodeKey(node))
	runPeers(t, p)
	return p
}

// testFIPs are the failover IPs every test node knows.
var testFIPs = []string{"shop/www", "shop/api"}

// meet makes every one of ps a member for the others, at its own address
// and with its own key (nodeKey), all knowing testFIPs.
func meet(ps ...*Peers) {
	for _, p := range ps {
		fronts := map[string]netip.AddrPort{}
		keys := map[string][]ed25519.PublicKey{}
		for _, q := range ps {
			if q != p {
				fronts[q.node] = q.Addr()
				keys[q.node] = []ed25519.PublicKey{publicKey(nodeKey(q.node))}
			}
		}
		p.SetMembership(Membership{Fronts: fronts, FailoverIPs: testFIPs})
		p.SetPeerKeys(keys)
	}
}

// to names the nodes of ps, for Send.
func to(ps ...*Peers) []string {
	var nodes []string
	for _, p := range ps {
		nodes = append(nodes, p.node)
	}
	return nodes
}

// runPeers runs p's receive loop until the returned stop is called, or t
// ends.
func runPeers(t *testing.T, p *Peers) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually polls cond every 10ms until it holds or 5s passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sendUntilHeard sends claims from p to to until to's view of fip lists p
// with LastHeard at the fake clock's now: the first heartbeat of a new boot
// only draws a challenge.
func sendUntilHeard(t *testing.T, from, dst *Peers, clk *clocktesting.FakeClock, fip string, claims []Claim) ownership.Peer {
	t.Helper()
	var got ownership.Peer
	eventually(t, from.node+" is heard by "+dst.node, func() bool {
		if err := from.Send(to(dst), claims); err != nil {
			t.Fatalf("Send: %v", err)
		}
		for _, peer := range dst.View(fip) {
			if peer.Node == from.node && peer.LastHeard.Equal(clk.Now()) {
				got = peer
				return true
			}
		}
		return false
	})
	settle(t, from, dst)
	return got
}

// settle waits until to handled every datagram from sent, so that none
// still in flight lands after the test steps the clock. All of from's
// datagrams go to to in these tests.
func settle(t *testing.T, from, to *Peers) {
	t.Helper()
	settleAll(t, to, from.seq.Load())
}

// settleAll waits until to handled sent datagrams, or until its counters
// stopped moving for quietFor: on a loaded machine the kernel may drop a
// datagram, which then never lands at all.
func settleAll(t *testing.T, to *Peers, sent uint64) {
	t.Helper()
	const quietFor = 500 * time.Millisecond
	last, since := handled(to), time.Now()
	eventually(t, to.node+" handled every datagram sent to it", func() bool {
		n := handled(to)
		if n != last {
			last, since = n, time.Now()
		}
		return n == sent || time.Since(since) >= quietFor
	})
}

func handled(p *Peers) uint64 {
	s := p.Stats()
	return s.Accepted + s.Unauthenticated + s.Malformed + s.Replayed + s.Challenged + s.Challenges + s.NoKey
}

func TestPeersExchange(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	a := startPeers(t, "front1", clk, testKey)
	b := startPeers(t, "front2", clk, testKey)
	meet(a, b)
	const fip = "shop/www"

	t0 := clk.Now()
	got := sendUntilHeard(t, a, b, clk, fip, []Claim{{FailoverIP: fip, Holding: true, SeenOwner: "front1", SeenEpoch: 4}})
	want := ownership.Peer{Node: "front1", LastHeard: t0, LastClaimed: t0, SeenOwner: "front1", SeenEpoch: 4}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("view after a holding claim = %+v, want %+v", got, want)
	}
	if !signalled(b.HolderHeard()) {
		t.Error("a holding claim arrived, but HolderHeard was not signalled")
	}

	clk.Step(time.Second)
	t1 := clk.Now()
	got = sendUntilHeard(t, a, b, clk, fip, []Claim{{FailoverIP: fip, SeenOwner: "front2", SeenEpoch: 5}})
	want = ownership.Peer{Node: "front1", LastHeard: t1, LastClaimed: t0, SeenOwner: "front2", SeenEpoch: 5}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("view after releasing = %+v, want %+v (LastClaimed stays at the last holding claim)", got, want)
	}
	if signalled(b.HolderHeard()) {
		t.Error("HolderHeard signalled, but front1 claims nothing any more")
	}
	if v := b.View("shop/other"); len(v) != 0 {
		t.Errorf("view of an address front1 never mentioned = %+v, want none", v)
	}
	if v := a.View(fip); len(v) != 0 {
		t.Errorf("front1 heard %+v, but front2 sent nothing", v)
	}
}

// signalled tells whether ch has a signal waiting, and takes it.
func signalled(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestPeersWrongKeyRefused(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	a := startPeers(t, "front1", clk, otherKey)
	b := startPeers(t, "front2", clk, testKey)
	meet(a, b)
	eventually(t, "front2 refuses front1's datagrams", func() bool {
		if err := a.Send(to(b), []Claim{{FailoverIP: "shop/www", Holding: true}}); err != nil {
			t.Fatal(err)
		}
		return b.Stats().Unauthenticated >= 3
	})
	if v := b.View("shop/www"); len(v) != 0 {
		t.Errorf("view = %+v, want nothing from a sender with the wrong key", v)
	}
	if s := b.Stats(); s.Accepted != 0 || s.Challenged != 0 {
		t.Errorf("stats = %+v, want no accepted or challenged datagram", s)
	}
}

func TestPeersWithoutKey(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	a := startPeers(t, "front1", clk, nil)
	b := startPeers(t, "front2", clk, []byte("too short"))
	if err := a.Send(to(b), nil); !errors.Is(err, ErrNoKey) {
		t.Errorf("Send without key: %v, want %v", err, ErrNoKey)
	}
	if err := b.Send(to(a), nil); !errors.Is(err, ErrNoKey) {
		t.Errorf("Send with a short key: %v, want %v", err, ErrNoKey)
	}
	c := startPeers(t, "front3", clk, testKey)
	meet(a, b, c)
	eventually(t, "front1 drops datagrams while it has no key", func() bool {
		if err := c.Send(to(a), nil); err != nil {
			t.Fatal(err)
		}
		return a.Stats().NoKey >= 1
	})
}

func TestPeersKeyRotation(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	a := startPeers(t, "front1", clk, testKey)
	b := startPeers(t, "front2", clk, testKey)
	meet(a, b)
	const fip = "shop/www"
	claims := []Claim{{FailoverIP: fip}}
	sendUntilHeard(t, a, b, clk, fip, claims)

	b.SetKey(otherKey) // front2 saw the new Secret first
	clk.Step(time.Second)
	sendUntilHeard(t, a, b, clk, fip, claims)

	clk.Step(KeyRotationGrace)
	before := b.Stats().Unauthenticated
	eventually(t, "the old key is refused after the grace", func() bool {
		if err := a.Send(to(b), claims); err != nil {
			t.Fatal(err)
		}
		return b.Stats().Unauthenticated > before
	})
	a.SetKey(otherKey)
	sendUntilHeard(t, a, b, clk, fip, claims)
}

// relay forwards datagrams between a and b, as a router would, and records
// those from a.
type relay struct {
	conn *net.UDPConn
	a, b netip.AddrPort

	mu     sync.Mutex
	fromA  [][]byte
	paused bool
}

func startRelay(t *testing.T, a, b netip.AddrPort) *relay {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(loopback))
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{conn: conn, a: a, b: b}
	done := make(chan struct{})
	go r.run(done)
	t.Cleanup(func() { conn.Close(); <-done })
	return r
}

func (r *relay) addr() netip.AddrPort { return r.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (r *relay) run(done chan struct{}) {
	defer close(done)
	buf := make([]byte, 2048)
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		to := r.a
		if from == r.a {
			to = r.b
			r.mu.Lock()
			r.fromA = append(r.fromA, append([]byte(nil), buf[:n]...))
			r.mu.Unlock()
		}
		_, _ = r.conn.WriteToUDPAddrPort(buf[:n], to)
	}
}

func (r *relay) last() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fromA[len(r.fromA)-1]
}

func (r *relay) replay(t *testing.T, b []byte) {
	t.Helper()
	if _, err := r.conn.WriteToUDPAddrPort(b, r.b); err != nil {
		t.Fatal(err)
	}
}

// through makes p send its heartbeats to node through r. The relay sends
// from the same loopback address, so node still takes them as p's.
func through(p *Peers, node string, r *relay) {
	p.SetMembership(Membership{Fronts: map[string]netip.AddrPort{node: r.addr()}, FailoverIPs: testFIPs})
	p.SetPeerKeys(map[string][]ed25519.PublicKey{node: {publicKey(nodeKey(node))}})
}

func TestPeersRefuseReplays(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	a, err := NewPeers("front1", loopback, clk)
	if err != nil {
		t.Fatal(err)
	}
	a.SetKey(testKey)
	a.SetSigner(nodeKey("front1"))
	stopA := runPeers(t, a)
	b := startPeers(t, "front2", clk, testKey)
	r := startRelay(t, a.Addr(), b.Addr())
	meet(a, b)
	through(a, "front2", r)
	const fip = "shop/www"

	send := func(claims []Claim) {
		t.Helper()
		eventually(t, "front2 hears front1 through the relay", func() bool {
			if err := a.Send(to(b), claims); err != nil {
				t.Fatal(err)
			}
			v := b.View(fip)
			return len(v) == 1 && v[0].LastHeard.Equal(clk.Now())
		})
		settle(t, a, b)
	}
	t0 := clk.Now()
	send([]Claim{{FailoverIP: fip, Holding: true, SeenOwner: "front1", SeenEpoch: 1}})
	holding := r.last()

	clk.Step(time.Second)
	send([]Claim{{FailoverIP: fip, SeenOwner: "front2", SeenEpoch: 2}})
	released := b.View(fip)

	// Within the boot, while front1 is heard: refused by its sequence
	// number, and nothing is sent back.
	clk.Step(resyncEvery / 2)
	stats := b.Stats()
	r.replay(t, holding)
	eventually(t, "the replay is counted", func() bool { return b.Stats().Replayed > stats.Replayed })
	if got := b.View(fip); !reflect.DeepEqual(got, released) {
		t.Errorf("view after a replay = %+v, want %+v", got, released)
	}

	// After front1 restarts with a new nonce: the old boot's datagram only
	// draws a challenge nobody can answer.
	stopA()
	restarted, err := NewPeers("front1", loopback, clk)
	if err != nil {
		t.Fatal(err)
	}
	restarted.SetKey(testKey)
	restarted.SetSigner(nodeKey("front1"))
	runPeers(t, restarted)
	r2 := startRelay(t, restarted.Addr(), b.Addr())
	through(restarted, "front2", r2)
	clk.Step(time.Second)
	t3 := clk.Now()
	eventually(t, "front2 hears front1's new boot", func() bool {
		if err := restarted.Send(to(b), []Claim{{FailoverIP: fip, SeenEpoch: 2, SeenOwner: "front2"}}); err != nil {
			t.Fatal(err)
		}
		v := b.View(fip)
		return len(v) == 1 && v[0].LastHeard.Equal(t3)
	})
	settleAll(t, b, a.seq.Load()+restarted.seq.Load()+1) // and the replay
	clk.Step(time.Second)
	stats = b.Stats()
	r.replay(t, holding)
	eventually(t, "the old boot's replay is challenged", func() bool { return b.Stats().Challenged > stats.Challenged })
	want := []ownership.Peer{{Node: "front1", LastHeard: t3, LastClaimed: t0, SeenOwner: "front2", SeenEpoch: 2}}
	if got := b.View(fip); !reflect.DeepEqual(got, want) {
		t.Errorf("view after replaying the old boot = %+v, want %+v", got, want)
	}
	if got := b.Stats().Accepted; got != stats.Accepted {
		t.Errorf("accepted %d datagrams during the replay, want %d", got, stats.Accepted)
	}
}

// TestPeersAnsweredAfterHandshake: a peer drops the claims of a new boot's
// first heartbeat, which it only challenges; the node that answers the
// challenge is told (Answered), so that its claims can go at once rather
// than a keepalive later.
func TestPeersAnsweredAfterHandshake(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	owner := startPeers(t, "front1", clk, testKey)
	voter := startPeers(t, "front2", clk, testKey)
	meet(owner, voter)
	const fip = "shop/www"
	holding := Claim{FailoverIP: fip, Holding: true, SeenOwner: "front1", SeenEpoch: 3}

	select {
	case <-owner.Answered():
		t.Fatal("Answered before any challenge")
	default:
	}
	if err := owner.Send(to(voter), []Claim{holding}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "front1 answers front2's challenge", func() bool { return owner.Stats().Challenges == 1 && voter.Stats().Accepted == 1 })
	select {
	case <-owner.Answered():
	default:
		t.Fatal("front1 answered a challenge and was not told")
	}
	if v := voter.View(fip); len(v) != 0 {
		t.Fatalf("front2's view after the handshake = %+v, want no claim yet", v)
	}
	// The heartbeat that the signal sends: heard at once.
	if err := owner.Send(to(voter), []Claim{holding}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "front2 hears front1's claim", func() bool { return len(voter.View(fip)) == 1 })
}

// TestPeersKeyedOnFirstKey: a node without a key can send nothing, and is
// told when it gets one, so that its first heartbeats go at once; a
// rotation, or the same key again, tells nothing.
func TestPeersKeyedOnFirstKey(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	p := startPeers(t, "front1", clk, nil)
	keyed := func() bool {
		select {
		case <-p.Keyed():
			return true
		default:
			return false
		}
	}
	if err := p.Send([]string{"front2"}, nil); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Send without a key: %v, want %v", err, ErrNoKey)
	}
	if keyed() {
		t.Fatal("Keyed before any key")
	}
	p.SetKey(testKey)
	if !keyed() {
		t.Fatal("not Keyed after the first key")
	}
	p.SetKey(testKey)
	p.SetKey(append(bytes.Clone(testKey), 'x'))
	if keyed() {
		t.Fatal("Keyed again after the same key and a rotation")
	}
	p.SetKey(nil)
	p.SetKey(testKey)
	if !keyed() {
		t.Fatal("not Keyed after a key that follows none")
	}
}
