package heartbeat

import (
	"crypto/ed25519"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// The tests below hand datagrams to Peers.receive directly, as a sender
// would over the wire, so that every field and source address is theirs to
// choose.

// wire is a plain loopback socket standing for another front: it reads what
// Peers sends it.
type wire struct {
	t    *testing.T
	conn *net.UDPConn
}

func newWire(t *testing.T, ip string) *wire {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &wire{t: t, conn: conn}
}

func (w *wire) addr() netip.AddrPort { return w.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// read returns the next datagram sent to w, decoded.
func (w *wire) read() *message {
	w.t.Helper()
	buf := make([]byte, MaxDatagramSize)
	if err := w.conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		w.t.Fatal(err)
	}
	n, err := w.conn.Read(buf)
	if err != nil {
		w.t.Fatalf("reading what Peers sent: %v", err)
	}
	m, err := decode(buf[:n], testKey)
	if err != nil {
		w.t.Fatal(err)
	}
	return m
}

// expectNothing fails the test if Peers sends w a datagram within 50ms: it
// answered what it should have refused.
func (w *wire) expectNothing() {
	w.t.Helper()
	if err := w.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		w.t.Fatal(err)
	}
	if n, err := w.conn.Read(make([]byte, MaxDatagramSize)); err == nil {
		w.t.Errorf("front1 answered a refused datagram with %d bytes", n)
	}
}

// speaker forges the datagrams of one node, with the shared key, signed
// with key: the node's own (nodeKey) when nil.
type speaker struct {
	node  string
	nonce nonce
	seq   uint64
	key   ed25519.PrivateKey
}

func (s *speaker) heartbeat(t *testing.T, claims []Claim, edit ...func(*message)) []byte {
	t.Helper()
	s.seq++
	m := &message{Type: msgHeartbeat, Node: s.node, Nonce: s.nonce, Seq: s.seq, Claims: claims}
	for _, e := range edit {
		e(m)
	}
	key := s.key
	if key == nil {
		key = nodeKey(s.node)
	}
	b, err := encode(m, testKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// establish makes p accept s's boot, answering the challenge p draws.
func (s *speaker) establish(t *testing.T, p *Peers, from netip.AddrPort) {
	t.Helper()
	p.receive(s.heartbeat(t, nil), from)
	p.mu.Lock()
	pending := p.senders[s.node].guard.pending
	p.mu.Unlock()
	if len(pending) == 0 {
		t.Fatalf("%s drew no challenge", s.node)
	}
	p.receive(s.heartbeat(t, nil, func(m *message) { m.HasEcho, m.Echo = true, pending[0].challenge }), from)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.senders[s.node].guard.established {
		t.Fatalf("%s not established", s.node)
	}
}

func ack(n nonce, seq uint64) func(*message) {
	return func(m *message) { m.HasAck, m.AckNonce, m.AckSeq = true, n, seq }
}

// promiseBook records the promises Peers makes, or fails to.
type promiseBook struct {
	made []map[string]Promise
	fail bool
}

func (b *promiseBook) Promise(heardAt map[string]Promise) error {
	if b.fail {
		return errors.New("disk full")
	}
	b.made = append(b.made, heardAt)
	return nil
}

// newBoundPeers is front1, knowing front2 at front2's wire address.
func newBoundPeers(t *testing.T, front2 *wire) (*Peers, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	p, err := NewPeers("front1", loopback, clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.conn.Close() })
	p.SetKey(testKey)
	p.SetSigner(nodeKey("front1"))
	p.SetMembership(Membership{Fronts: map[string]netip.AddrPort{"front2": front2.addr()}, FailoverIPs: testFIPs})
	p.SetPeerKeys(map[string][]ed25519.PublicKey{"front2": {publicKey(nodeKey("front2"))}})
	return p, clk
}

// heardFront2 is front1 having accepted front2's boot, the challenge it drew
// read off the wire.
func heardFront2(t *testing.T) (*Peers, *clocktesting.FakeClock, *wire, *speaker) {
	t.Helper()
	front2 := newWire(t, "127.0.0.1")
	p, clk := newBoundPeers(t, front2)
	s := &speaker{node: "front2", nonce: testNonce(1)}
	s.establish(t, p, front2.addr())
	front2.read()
	return p, clk, front2, s
}

func TestPeersBindSenderToItsAddress(t *testing.T) {
	front2 := newWire(t, "127.0.0.1")
	p, _ := newBoundPeers(t, front2)
	claim := []Claim{{FailoverIP: "shop/www", SeenOwner: "front9", SeenEpoch: 1 << 62}}
	elsewhere := netip.MustParseAddrPort("127.0.0.2:7694")

	impostor := &speaker{node: "front2", nonce: testNonce(1)}
	p.receive(impostor.heartbeat(t, claim), elsewhere)
	stranger := &speaker{node: "front9", nonce: testNonce(2)}
	p.receive(stranger.heartbeat(t, claim), front2.addr())

	want := Stats{WrongSource: 1, UnknownSender: 1}
	if got := p.Stats(); got != want {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
	if len(p.senders) != 0 {
		t.Errorf("kept state for %d senders, want none", len(p.senders))
	}
	// Nothing was answered either: a challenge to elsewhere would let one
	// front make another send datagrams to any address.
	front2.expectNothing()
}

func TestPeersBoundWhatOneSenderKeeps(t *testing.T) {
	front2 := newWire(t, "127.0.0.1")
	p, _ := newBoundPeers(t, front2)
	s := &speaker{node: "front2", nonce: testNonce(1)}
	s.establish(t, p, front2.addr())

	// Claims about failover IPs front1 does not know leave nothing behind,
	// so a sender cannot grow front1's memory by inventing names.
	var claims []Claim
	for _, fip := range []string{"shop/www", "x/a", "x/b", "x/c"} {
		claims = append(claims, Claim{FailoverIP: fip, SeenOwner: "front2", SeenEpoch: 3})
	}
	p.receive(s.heartbeat(t, claims), front2.addr())
	if got := p.Stats().IgnoredClaims; got != 3 {
		t.Errorf("ignored %d claims, want 3", got)
	}
	if got := len(p.senders["front2"].fips); got != 1 {
		t.Errorf("kept %d failover IPs for front2, want 1", got)
	}
	if v := p.View("x/a"); len(v) != 0 {
		t.Errorf("view of an unknown failover IP = %+v", v)
	}

	// A failover IP that is deleted is forgotten, and so is a front that
	// leaves: a forged or stale report of either blocks nothing later.
	p.SetMembership(Membership{Fronts: map[string]netip.AddrPort{"front2": front2.addr()}, FailoverIPs: []string{"shop/api"}})
	if v := p.View("shop/www"); len(v) != 0 {
		t.Errorf("view of a deleted failover IP = %+v", v)
	}
	p.SetMembership(Membership{FailoverIPs: testFIPs})
	if len(p.senders) != 0 {
		t.Errorf("kept state for %d departed senders", len(p.senders))
	}
}

func TestPeersConfirmationRunsFromTheEchoedHeartbeat(t *testing.T) {
	p, clk, front2, s := heardFront2(t)
	confirm := []Claim{{FailoverIP: "shop/www", SeenOwner: "front1", SeenEpoch: 7}}

	sentAt := clk.Now()
	if err := p.Send([]string{"front2"}, []Claim{{FailoverIP: "shop/www", Holding: true, SeenOwner: "front1", SeenEpoch: 7}}); err != nil {
		t.Fatal(err)
	}
	asked := front2.read()

	// front2's answer takes 1s to arrive: the proof runs from sentAt all
	// the same.
	clk.Step(time.Second)
	p.receive(s.heartbeat(t, confirm, ack(asked.Nonce, asked.Seq)), front2.addr())
	if v := p.View("shop/www"); len(v) != 1 || !v[0].Confirmed.Equal(sentAt) || !v[0].LastHeard.Equal(clk.Now()) {
		t.Fatalf("view = %+v, want confirmed at %v, heard at %v", v, sentAt, clk.Now())
	}

	// The same report without an ack keeps the confirmation; a new report
	// without one has none.
	clk.Step(time.Second)
	p.receive(s.heartbeat(t, confirm), front2.addr())
	if v := p.View("shop/www"); !v[0].Confirmed.Equal(sentAt) {
		t.Errorf("a repeated report lost its confirmation: %+v", v)
	}
	p.receive(s.heartbeat(t, []Claim{{FailoverIP: "shop/www", SeenOwner: "front2", SeenEpoch: 8}}), front2.addr())
	if v := p.View("shop/www"); !v[0].Confirmed.IsZero() {
		t.Errorf("a new report without ack kept a confirmation: %+v", v)
	}

	tests := []struct {
		name string
		ack  func(*message)
	}{
		{name: "an ack of another boot of front1", ack: ack(testNonce(9), asked.Seq)},
		{name: "an ack of a datagram front1 never sent", ack: ack(asked.Nonce, asked.Seq+1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.receive(s.heartbeat(t, []Claim{{FailoverIP: "shop/www", SeenOwner: "front2", SeenEpoch: 9}}), front2.addr())
			p.receive(s.heartbeat(t, confirm, tt.ack), front2.addr())
			if v := p.View("shop/www"); !v[0].Confirmed.IsZero() {
				t.Errorf("confirmed = %v, want none", v[0].Confirmed)
			}
		})
	}
}

func TestPeersPromiseBeforeConfirming(t *testing.T) {
	p, clk, front2, s := heardFront2(t)
	book := &promiseBook{}
	p.SetPromises(book)
	// front2 holds shop/www, and owns shop/img without holding it.
	p.receive(s.heartbeat(t, []Claim{{FailoverIP: "shop/www", Holding: true, SeenOwner: "front2", SeenEpoch: 7},
		{FailoverIP: "shop/img", SeenOwner: "front2", SeenEpoch: 3}}), front2.addr())
	heardAt := clk.Now()
	clk.Step(time.Second)

	tests := []struct {
		name     string
		claims   []Claim
		fail     bool
		wantAck  bool
		wantMade []map[string]Promise
		// wantWithdrawn: the claim reaches front2 withdrawn.
		wantWithdrawn bool
	}{
		{name: "confirming front2's ownership promises first",
			claims:  []Claim{{FailoverIP: "shop/www", SeenOwner: "front2", SeenEpoch: 7}, {FailoverIP: "shop/api", SeenOwner: "front1", SeenEpoch: 2}},
			wantAck: true, wantMade: []map[string]Promise{{"shop/www": {HeardAt: heardAt, Epoch: 7}}}},
		{name: "holding it confirms nothing", claims: []Claim{{FailoverIP: "shop/www", Holding: true, SeenOwner: "front2", SeenEpoch: 7}}, wantAck: true},
		{name: "a withdrawn voter confirms nothing", claims: []Claim{{FailoverIP: "shop/www", Withdrawn: true, SeenOwner: "front2", SeenEpoch: 7}}, wantAck: true},
		{name: "an owner that does not hold the address is vouched for by nobody: the claim goes withdrawn",
			claims: []Claim{{FailoverIP: "shop/img", SeenOwner: "front2", SeenEpoch: 3}}, wantAck: true, wantWithdrawn: true},
		{name: "a promise that cannot be kept is not made", claims: []Claim{{FailoverIP: "shop/www", SeenOwner: "front2", SeenEpoch: 7}}, fail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			book.made, book.fail = nil, tt.fail
			if err := p.Send([]string{"front2"}, tt.claims); err != nil {
				t.Fatal(err)
			}
			m := front2.read()
			if m.HasAck != tt.wantAck || (tt.wantAck && (m.AckNonce != s.nonce || m.AckSeq != s.seq)) {
				t.Errorf("ack %v %x/%d, want %v of %x/%d", m.HasAck, m.AckNonce, m.AckSeq, tt.wantAck, s.nonce, s.seq)
			}
			if !reflect.DeepEqual(book.made, tt.wantMade) {
				t.Errorf("promised %v, want %v", book.made, tt.wantMade)
			}
			if got := m.Claims[0].Withdrawn; got != (tt.wantWithdrawn || tt.claims[0].Withdrawn) {
				t.Errorf("claim withdrawn = %v, want %v", got, tt.wantWithdrawn)
			}
		})
	}
}

// Whoever got hold of a member's own key can forge its datagram numbered
// far ahead, which would refuse every later datagram of that member as a
// replay until it restarts. The member is challenged to resync instead,
// once it has gone unheard for resyncEvery.
func TestPeersResyncAfterAForgedSequenceNumber(t *testing.T) {
	p, clk, front2, s := heardFront2(t)
	claim := []Claim{{FailoverIP: "shop/www", SeenOwner: "front2", SeenEpoch: 3}}

	forger := &speaker{node: "front2", nonce: s.nonce, seq: 1 << 62}
	p.receive(forger.heartbeat(t, []Claim{{FailoverIP: "shop/www", SeenOwner: "front2", SeenEpoch: 1 << 62}}), front2.addr())
	p.receive(s.heartbeat(t, claim), front2.addr())
	if got := p.Stats().Replayed; got != 1 {
		t.Fatalf("replayed = %d, want front2's real datagram refused", got)
	}

	clk.Step(resyncEvery)
	p.receive(s.heartbeat(t, claim), front2.addr())
	m := front2.read()
	if m.Type != msgChallenge || m.To != "front2" || m.ToNonce != s.nonce {
		t.Fatalf("front1 sent %+v, want a challenge to front2's boot", m)
	}
	p.receive(s.heartbeat(t, nil, func(a *message) { a.HasEcho, a.Echo = true, m.Challenge }), front2.addr())
	p.receive(s.heartbeat(t, claim), front2.addr())
	if v := p.View("shop/www"); len(v) != 1 || v[0].SeenEpoch != 3 || !v[0].LastHeard.Equal(clk.Now()) {
		t.Errorf("view after the resync = %+v, want front2's real report", v)
	}
}

// TestPeersSignalWhatChanges: a peer that says something new (a later
// epoch, a claim) wakes the failover loop at once; one that repeats itself
// does not, so a steady farm decides only at its ticks.
func TestPeersSignalWhatChanges(t *testing.T) {
	p, _, front2, s := heardFront2(t)
	drain := func() bool {
		select {
		case <-p.Changed():
			return true
		default:
			return false
		}
	}
	drain()
	for _, tc := range []struct {
		what  string
		claim Claim
		want  bool
	}{
		{"a first report", Claim{FailoverIP: "shop/www", SeenOwner: "front1", SeenEpoch: 3}, true},
		{"the same report again", Claim{FailoverIP: "shop/www", SeenOwner: "front1", SeenEpoch: 3}, false},
		{"a later epoch", Claim{FailoverIP: "shop/www", SeenOwner: "front2", SeenEpoch: 4}, true},
		{"a claim", Claim{FailoverIP: "shop/www", Holding: true, SeenOwner: "front2", SeenEpoch: 4}, true},
		{"the claim repeated", Claim{FailoverIP: "shop/www", Holding: true, SeenOwner: "front2", SeenEpoch: 4}, false},
	} {
		p.receive(s.heartbeat(t, []Claim{tc.claim}), front2.addr())
		if got := drain(); got != tc.want {
			t.Errorf("%s: signalled = %v, want %v", tc.what, got, tc.want)
		}
	}
}
