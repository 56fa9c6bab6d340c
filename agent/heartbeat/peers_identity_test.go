package heartbeat

import (
	"crypto/ed25519"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// The tests below are about who may speak for whom: every datagram must be
// signed by its sender's own published key.

func TestPeersRefuseAFrontSpeakingForAnother(t *testing.T) {
	p, _, front2, s := heardFront2(t)
	p.receive(s.heartbeat(t, []Claim{{FailoverIP: "shop/www", Holding: true, SeenOwner: "front2", SeenEpoch: 3}}), front2.addr())
	view, stats := p.View("shop/www"), p.Stats()

	// front3 holds the shared key, is a member, and sends from front2's
	// address as front2, in front2's boot, numbered ahead: signed with its
	// own key, all of it is refused before the replay guard sees it.
	p.SetMembership(Membership{Fronts: map[string]netip.AddrPort{"front2": front2.addr(), "front3": netip.MustParseAddrPort("127.0.0.3:7694")}, FailoverIPs: testFIPs})
	p.SetPeerKeys(map[string][]ed25519.PublicKey{"front2": {publicKey(nodeKey("front2"))}, "front3": {publicKey(nodeKey("front3"))}})
	forger := &speaker{node: "front2", nonce: s.nonce, seq: s.seq + 1000, key: nodeKey("front3")}
	p.receive(forger.heartbeat(t, []Claim{{FailoverIP: "shop/www", SeenOwner: "front3", SeenEpoch: 1 << 40}}), front2.addr())
	newBoot := &speaker{node: "front2", nonce: testNonce(77), key: nodeKey("front3")}
	p.receive(newBoot.heartbeat(t, nil), front2.addr())

	stats.BadSignature += 2
	if got := p.Stats(); got != stats {
		t.Errorf("stats = %+v, want %+v", got, stats)
	}
	if got := p.View("shop/www"); !reflect.DeepEqual(got, view) {
		t.Errorf("view after forged datagrams = %+v, want unchanged %+v", got, view)
	}
	p.mu.Lock()
	g := p.senders["front2"].guard
	p.mu.Unlock()
	if g.seq != s.seq || len(g.pending) != 0 {
		t.Errorf("front2's guard at seq %d with %d challenges pending, want %d and none: forged datagrams moved it", g.seq, len(g.pending), s.seq)
	}
	// front2's own next datagram is heard: it was not silenced.
	p.receive(s.heartbeat(t, []Claim{{FailoverIP: "shop/www", Holding: true, SeenOwner: "front2", SeenEpoch: 3}}), front2.addr())
	if got := p.Stats().Accepted; got != stats.Accepted+1 {
		t.Errorf("accepted %d, want front2's own datagram accepted", got-stats.Accepted)
	}
}

func TestPeersRefuseASenderWithoutPublishedKey(t *testing.T) {
	front2 := newWire(t, "127.0.0.1")
	p, _ := newBoundPeers(t, front2)
	p.SetPeerKeys(nil)
	s := &speaker{node: "front2", nonce: testNonce(1)}
	p.receive(s.heartbeat(t, nil), front2.addr())
	if got, want := p.Stats(), (Stats{NoSenderKey: 1}); got != want {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
	if len(p.senders) != 0 {
		t.Errorf("kept state for %d senders, want none", len(p.senders))
	}
}

// TestPeersRefuseAnOlderAgent: an agent of the previous release (wire
// version 2, the shared key only) is refused whole and counted, its
// datagram never parsed.
func TestPeersRefuseAnOlderAgent(t *testing.T) {
	front2 := newWire(t, "127.0.0.1")
	p, _ := newBoundPeers(t, front2)
	b := (&speaker{node: "front2", nonce: testNonce(1)}).heartbeat(t, []Claim{{FailoverIP: "shop/www", Holding: true}})
	v2 := appendMAC(withByte(b[:len(b)-trailerSize], 4, 2), testKey)
	p.receive(v2, front2.addr())
	if got, want := p.Stats(), (Stats{OldVersion: 1}); got != want {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
}

func TestPeersRefuseReorderedDatagrams(t *testing.T) {
	p, _, front2, s := heardFront2(t)
	first := s.heartbeat(t, []Claim{{FailoverIP: "shop/www", Holding: true, SeenOwner: "front2", SeenEpoch: 3}})
	second := s.heartbeat(t, []Claim{{FailoverIP: "shop/www", SeenOwner: "front4", SeenEpoch: 4}})
	p.receive(second, front2.addr())
	view, stats := p.View("shop/www"), p.Stats()
	p.receive(first, front2.addr())
	stats.Replayed++
	if got := p.Stats(); got != stats {
		t.Errorf("stats = %+v, want %+v", got, stats)
	}
	if got := p.View("shop/www"); !reflect.DeepEqual(got, view) || got[0].SeenEpoch != 4 {
		t.Errorf("view after the older datagram arrived last = %+v, want %+v", got, view)
	}
}

// TestPeersUnknownSenderFlood: datagrams from many senders that are no
// members, and forged ones from a member's address, cost counting only:
// no state per sender, no answer.
func TestPeersUnknownSenderFlood(t *testing.T) {
	front2 := newWire(t, "127.0.0.1")
	p, _ := newBoundPeers(t, front2)
	const n = 2000
	forgerKey := nodeKey("front3")
	strangers, forged := make([][]byte, n), make([][]byte, n)
	for i := range n {
		s := &speaker{node: fmt.Sprintf("stranger-%d", i), nonce: testNonce(byte(i)), key: forgerKey}
		strangers[i] = s.heartbeat(t, []Claim{{FailoverIP: "shop/www", Holding: true}})
		f := &speaker{node: "front2", nonce: testNonce(byte(i)), seq: uint64(i), key: forgerKey}
		forged[i] = f.heartbeat(t, nil)
	}
	timed := func(datagrams [][]byte, from func(i int) netip.AddrPort) time.Duration {
		start := time.Now()
		for i, b := range datagrams {
			p.receive(b, from(i))
		}
		return time.Since(start) / n
	}
	perStranger := timed(strangers, func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 7694)
	})
	perForged := timed(forged, func(int) netip.AddrPort { return front2.addr() })
	t.Logf("receiving costs %v per datagram from a stranger (refused by name), %v per one forged as a member (refused by signature)", perStranger, perForged)
	if got, want := p.Stats(), (Stats{UnknownSender: n, BadSignature: n}); got != want {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
	if len(p.senders) != 0 {
		t.Errorf("kept state for %d senders, want none", len(p.senders))
	}
	front2.expectNothing()
}

// TestPeersNodeKeyRotation: a rotating front publishes its next key beside
// the current one, signs with it once published, then withdraws the old
// one. Its peers hear it all along; the old key verifies nothing once
// withdrawn.
func TestPeersNodeKeyRotation(t *testing.T) {
	p, _, front2, s := heardFront2(t)
	old, next := nodeKey("front2"), nodeKey("front2", "v2")
	publish := func(keys ...ed25519.PrivateKey) {
		var pubs []ed25519.PublicKey
		for _, k := range keys {
			pubs = append(pubs, publicKey(k))
		}
		p.SetPeerKeys(map[string][]ed25519.PublicKey{"front2": pubs})
	}
	claim := []Claim{{FailoverIP: "shop/www", SeenOwner: "front2", SeenEpoch: 3}}
	steps := []struct {
		name      string
		published []ed25519.PrivateKey
		signer    ed25519.PrivateKey
		heard     bool
	}{
		{"before the rotation", []ed25519.PrivateKey{old}, old, true},
		{"the next key is not used before it is published", []ed25519.PrivateKey{old}, next, false},
		{"both published, still the old key", []ed25519.PrivateKey{old, next}, old, true},
		{"both published, the next key signs", []ed25519.PrivateKey{old, next}, next, true},
		{"the old key withdrawn", []ed25519.PrivateKey{next}, next, true},
		{"the old key verifies nothing any more", []ed25519.PrivateKey{next}, old, false},
	}
	for _, step := range steps {
		publish(step.published...)
		s.key = step.signer
		before := p.Stats()
		p.receive(s.heartbeat(t, claim), front2.addr())
		after := p.Stats()
		if heard := after.Accepted > before.Accepted; heard != step.heard {
			t.Errorf("%s: heard = %v, want %v (stats %+v)", step.name, heard, step.heard, after)
		}
	}
}

// TestPeersRoundTrip: front2 acks front1's heartbeat 30ms after it
// received it, and its answer takes 5ms more to arrive: front1 measures
// the 5ms, not the time front2 kept its heartbeat.
func TestPeersRoundTrip(t *testing.T) {
	p, clk, front2, s := heardFront2(t)
	var got []time.Duration
	p.OnRoundTrip(func(d time.Duration) { got = append(got, d) })
	if err := p.Send([]string{"front2"}, nil); err != nil {
		t.Fatal(err)
	}
	asked := front2.read()
	clk.Step(35 * time.Millisecond)
	p.receive(s.heartbeat(t, nil, ack(asked.Nonce, asked.Seq), func(m *message) { m.AckDelay = 30 * time.Millisecond }), front2.addr())
	// An ack of an earlier heartbeat of front1 times nothing: front1 keeps
	// only the time of the last one.
	p.receive(s.heartbeat(t, nil, ack(asked.Nonce, asked.Seq-1)), front2.addr())
	if want := []time.Duration{5 * time.Millisecond}; !reflect.DeepEqual(got, want) {
		t.Errorf("round trips %v, want %v", got, want)
	}

	// front1's own acks carry how long it kept what it acks.
	clk.Step(12 * time.Millisecond)
	if err := p.Send([]string{"front2"}, nil); err != nil {
		t.Fatal(err)
	}
	if m := front2.read(); !m.HasAck || m.AckDelay != 12*time.Millisecond {
		t.Errorf("front1's ack: %v, delay %v, want 12ms", m.HasAck, m.AckDelay)
	}
}
