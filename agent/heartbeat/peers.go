package heartbeat

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"github.com/webfarm/webfarm/agent/ownership"
)

// MinKeyLen is the shortest shared key SetKey accepts: 128 bits.
const MinKeyLen = 16

// KeyRotationGrace is how long, after SetKey changes the key, datagrams
// authenticated with the previous key are still accepted: agents see a new
// Secret at slightly different times.
const KeyRotationGrace = time.Minute

// ErrNoKey is returned by Send while no usable key is set.
var ErrNoKey = errors.New("no peer heartbeat key: sending nothing")

// Claim is what this node says about one failover IP in its heartbeats.
type Claim struct {
	// FailoverIP names the FailoverIP object as namespace/name.
	FailoverIP string
	// Holding: this node holds the address.
	Holding bool
	// SeenOwner and SeenEpoch are the owner and epoch in the FailoverIP
	// status as this node last saw it; SeenEpoch 0 when it saw none.
	SeenOwner string
	SeenEpoch int64
}

// Stats counts received datagrams by outcome.
type Stats struct {
	Accepted        uint64
	Unauthenticated uint64
	Malformed       uint64
	Replayed        uint64
	Challenged      uint64
	// Challenges counts challenges received, answered or not.
	Challenges uint64
	// NoKey counts datagrams dropped because no key was set.
	NoKey uint64
}

// Peers sends and receives the agent-to-agent heartbeats of one node.
type Peers struct {
	node  string
	nonce nonce
	conn  *net.UDPConn
	clk   clock.Clock
	seq   atomic.Uint64

	mu         sync.Mutex
	key        []byte
	oldKey     []byte
	oldKeyTill time.Time
	senders    map[string]*sender
	stats      Stats
}

// sender is what this node knows of one peer.
type sender struct {
	guard replayGuard
	fips  map[string]*heard
}

// heard is what one peer last said about one failover IP, by this node's
// clock.
type heard struct {
	lastHeard   time.Time
	lastClaimed time.Time
	seenOwner   string
	seenEpoch   int64
}

// NewPeers binds the UDP socket of node's heartbeats to listen (port 0
// picks one; see Addr). A nil clk is the real clock. Nothing is sent or
// accepted before SetKey.
func NewPeers(node string, listen netip.AddrPort, clk clock.Clock) (*Peers, error) {
	if err := validateNode("node", node); err != nil {
		return nil, err
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(listen))
	if err != nil {
		return nil, fmt.Errorf("binding peer heartbeats to %s: %w", listen, err)
	}
	p := &Peers{node: node, conn: conn, clk: clk, senders: map[string]*sender{}}
	p.nonce = randomNonce()
	return p, nil
}

// Addr is the address the socket is bound to.
func (p *Peers) Addr() netip.AddrPort {
	return p.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// CheckKey tells why key cannot authenticate heartbeats, or nil.
func CheckKey(key []byte) error {
	if len(key) < MinKeyLen {
		return fmt.Errorf("peer heartbeat key of %d bytes: need at least %d", len(key), MinKeyLen)
	}
	return nil
}

// SetKey sets the shared key, as read from the peer Secret. A key that
// CheckKey refuses, nil included, disables the heartbeats: nothing is sent
// or accepted. A new key replaces the old one, which is still accepted on
// reception for KeyRotationGrace.
func (p *Peers) SetKey(key []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if CheckKey(key) != nil {
		p.key, p.oldKey = nil, nil
		return
	}
	if bytes.Equal(key, p.key) {
		return
	}
	if p.key != nil {
		p.oldKey, p.oldKeyTill = p.key, p.clk.Now().Add(KeyRotationGrace)
	}
	p.key = bytes.Clone(key)
}

// keys returns the keys that authenticate a datagram received now.
func (p *Peers) keys() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.key == nil {
		return nil
	}
	if p.oldKey != nil && p.clk.Now().Before(p.oldKeyTill) {
		return [][]byte{p.key, p.oldKey}
	}
	return [][]byte{p.key}
}

func (p *Peers) sendKey() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.key
}

// Send sends claims to every target, in as many datagrams as they need, each
// with the next sequence number. It returns ErrNoKey while no key is set,
// and otherwise tries every target before returning the errors.
func (p *Peers) Send(targets []netip.AddrPort, claims []Claim) error {
	key := p.sendKey()
	if key == nil {
		return ErrNoKey
	}
	batches, err := batchClaims(p.node, claims)
	if err != nil {
		return err
	}
	var errs []error
	for _, to := range targets {
		for _, batch := range batches {
			m := &message{Type: msgHeartbeat, Claims: batch}
			if err := p.send(to, m, key); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	return errors.Join(errs...)
}

func (p *Peers) send(to netip.AddrPort, m *message, key []byte) error {
	m.Node, m.Nonce, m.Seq = p.node, p.nonce, p.seq.Add(1)
	b, err := encode(m, key)
	if err != nil {
		return err
	}
	if _, err := p.conn.WriteToUDPAddrPort(b, to); err != nil {
		return fmt.Errorf("sending heartbeat to %s: %w", to, err)
	}
	return nil
}

// batchClaims splits claims into groups that each fit one datagram.
func batchClaims(node string, claims []Claim) ([][]Claim, error) {
	overhead := headerMin + len(node) + 1 + NonceSize + 2 + macSize
	var batches [][]Claim
	var batch []Claim
	size := overhead
	for _, c := range claims {
		if err := c.validate(); err != nil {
			return nil, err
		}
		if len(batch) > 0 && size+claimSize(c) > MaxDatagramSize {
			batches, batch, size = append(batches, batch), nil, overhead
		}
		batch, size = append(batch, c), size+claimSize(c)
	}
	// A heartbeat without claims still says the node is alive.
	return append(batches, batch), nil
}

// Run receives heartbeats until ctx is done, then closes the socket and
// returns nil. It returns an error if the socket fails otherwise.
func (p *Peers) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { p.conn.Close() })
	defer stop()
	defer p.conn.Close()
	buf := make([]byte, MaxDatagramSize+1)
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("receiving peer heartbeats: %w", err)
		}
		if err != nil {
			// Transient (an ICMP error queued by an earlier send).
			continue
		}
		p.receive(buf[:n], from)
	}
}

// receive handles one datagram. Anything it refuses is only counted: logging
// what an attacker sends would let them fill the log.
func (p *Peers) receive(b []byte, from netip.AddrPort) {
	keys := p.keys()
	if keys == nil {
		p.count(func(s *Stats) { s.NoKey++ })
		return
	}
	m, err := decode(b, keys...)
	switch {
	case errors.Is(err, errUnauthenticated):
		p.count(func(s *Stats) { s.Unauthenticated++ })
		return
	case err != nil:
		p.count(func(s *Stats) { s.Malformed++ })
		return
	case m.Node == p.node:
		// Our own datagram, looped back or replayed at us.
		return
	}
	switch m.Type {
	case msgHeartbeat:
		p.onHeartbeat(m, from, keys[0])
	case msgChallenge:
		p.onChallenge(m, from, keys[0])
	}
}

func (p *Peers) onHeartbeat(m *message, from netip.AddrPort, key []byte) {
	p.mu.Lock()
	s := p.sender(m.Node)
	v, ch := s.guard.admit(m.Nonce, m.Seq, m.HasEcho, m.Echo, randomNonce)
	switch v {
	case accept:
		p.stats.Accepted++
		s.record(m.Claims, p.clk.Now())
	case replayed:
		p.stats.Replayed++
	case challenge:
		p.stats.Challenged++
	}
	p.mu.Unlock()
	if v == challenge {
		// Best effort: the sender's next heartbeat draws the same challenge.
		_ = p.send(from, &message{Type: msgChallenge, To: m.Node, ToNonce: m.Nonce, Challenge: ch}, key)
	}
}

// onChallenge answers a challenge to this boot of this node with an empty
// heartbeat that echoes it: claims follow in the next regular heartbeat, so
// that no claim is ever sent later than it was made.
func (p *Peers) onChallenge(m *message, from netip.AddrPort, key []byte) {
	p.count(func(s *Stats) { s.Challenges++ })
	if m.To != p.node || m.ToNonce != p.nonce {
		return
	}
	_ = p.send(from, &message{Type: msgHeartbeat, HasEcho: true, Echo: m.Challenge}, key)
}

func (p *Peers) sender(node string) *sender {
	s, ok := p.senders[node]
	if !ok {
		s = &sender{fips: map[string]*heard{}}
		p.senders[node] = s
	}
	return s
}

func (s *sender) record(claims []Claim, now time.Time) {
	for _, c := range claims {
		h, ok := s.fips[c.FailoverIP]
		if !ok {
			h = &heard{}
			s.fips[c.FailoverIP] = h
		}
		h.lastHeard, h.seenOwner, h.seenEpoch = now, c.SeenOwner, c.SeenEpoch
		if c.Holding {
			h.lastClaimed = now
		}
	}
}

// View returns, per peer that sent a claim for failoverIP, what it said,
// sorted by node. A peer counts as heard for an address only through
// heartbeats that carry a claim for it: a peer that does not know the
// address cannot vouch that it does not hold it.
func (p *Peers) View(failoverIP string) []ownership.Peer {
	p.mu.Lock()
	defer p.mu.Unlock()
	var view []ownership.Peer
	for node, s := range p.senders {
		h, ok := s.fips[failoverIP]
		if !ok {
			continue
		}
		view = append(view, ownership.Peer{
			Node:        node,
			LastHeard:   h.lastHeard,
			LastClaimed: h.lastClaimed,
			SeenOwner:   h.seenOwner,
			SeenEpoch:   h.seenEpoch,
		})
	}
	slices.SortFunc(view, func(a, b ownership.Peer) int { return strings.Compare(a.Node, b.Node) })
	return view
}

// Stats returns the counts of received datagrams so far.
func (p *Peers) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

func (p *Peers) count(f func(*Stats)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(&p.stats)
}

func randomNonce() nonce {
	var n nonce
	// crypto/rand.Read never fails on Linux; it panics rather than return
	// predictable bytes.
	_, _ = rand.Read(n[:])
	return n
}
