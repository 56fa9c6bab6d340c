package heartbeat

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
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

// ErrNoKey is returned by Send while no usable shared key or no signing key
// is set.
var ErrNoKey = errors.New("no peer heartbeat key: sending nothing")

// Claim is what this node says about one failover IP in its heartbeats.
type Claim struct {
	// FailoverIP names the FailoverIP object as namespace/name.
	FailoverIP string
	// Holding: this node holds the address, or owns it and lacks only a
	// proof of liveness to hold it (ownership.ClaimsForProof): its voters
	// confirm only a claimant.
	Holding bool
	// SeenOwner and SeenEpoch are the owner and epoch in the FailoverIP
	// status as this node last saw it; SeenEpoch 0 when it saw none.
	SeenOwner string
	SeenEpoch int64
	// Withdrawn: this claim does not vouch for SeenOwner at SeenEpoch,
	// because this node withdrew from that epoch (ownership.Withdraw), or
	// because the owner did not claim the address in the last heartbeat
	// heard from it (Send sets it then): a node vouches only for an owner
	// that claims the address, so that one that stopped holding it, or
	// waits for anything but a proof, is withdrawn from too.
	Withdrawn bool
}

// Stats counts received datagrams by outcome, and the datagrams sent.
type Stats struct {
	// Sent counts datagrams this node sent: heartbeats, challenges and
	// their answers.
	Sent     uint64
	Accepted uint64
	// Unauthenticated counts datagrams whose MAC no key verifies.
	Unauthenticated uint64
	// OldVersion counts datagrams of another wire version (an agent of
	// another release), refused before anything of them is read.
	OldVersion uint64
	Malformed  uint64
	Replayed   uint64
	Challenged uint64
	// Challenges counts challenges received, answered or not.
	Challenges uint64
	// NoKey counts datagrams dropped because no key was set.
	NoKey uint64
	// UnknownSender counts authenticated datagrams from a node that is not
	// a member (SetMembership).
	UnknownSender uint64
	// WrongSource counts authenticated datagrams from a member whose source
	// address is not the member's address.
	WrongSource uint64
	// NoSenderKey counts datagrams from a member that publishes no peer
	// key (SetPeerKeys): nobody can tell it from another front speaking
	// for it.
	NoSenderKey uint64
	// BadSignature counts datagrams from a member whose signature none of
	// the member's published keys verifies: another front speaking for
	// it, or a key this node has not seen published yet.
	BadSignature uint64
	// IgnoredClaims counts claims about a failover IP this node does not
	// know, which it keeps nothing of.
	IgnoredClaims uint64
}

// Membership is what Peers accepts and where it sends: the fronts, by node
// name, with the address of their heartbeats, and the failover IPs that
// exist, as namespace/name.
type Membership struct {
	Fronts      map[string]netip.AddrPort
	FailoverIPs []string
}

// Promises keeps the promises this node makes when it confirms another
// node's ownership of a failover IP: it must not announce that address
// before the confirmed heartbeat's arrival plus the proof's window.
type Promises interface {
	// Promise records, before anything is sent, per failover IP the latest
	// arrival time of a heartbeat the coming confirmations echo, and the
	// epoch they confirm. When it returns an error — they are not saved
	// yet, or this node withdrew from that epoch meanwhile — the
	// confirmations are sent without their ack, which makes them prove
	// nothing. The heartbeats wait for it: it should wait on the disk
	// briefly at most.
	Promise(promised map[string]Promise) error
}

// Promise is what one confirmation promises: not to announce the address
// before HeardAt plus the proof's window, for the owner of Epoch.
type Promise struct {
	HeardAt time.Time
	Epoch   int64
}

// resyncEvery is how long a sender must go without an accepted datagram
// before one refused as a replay challenges it to resync
// (replayGuard.resync), and how often at most: a sender heard normally
// draws nothing from replays, and a silenced one one challenge per
// resyncEvery, sent to its own address.
const resyncEvery = time.Second

// sentLog is how many Send calls Peers remembers the time of: a peer's ack
// older than that proves nothing.
const sentLog = 256

// Peers sends and receives the agent-to-agent heartbeats of one node.
type Peers struct {
	node  string
	nonce nonce
	conn  *net.UDPConn
	clk   clock.Clock
	seq   atomic.Uint64
	sends atomic.Uint64

	mu         sync.Mutex
	key        []byte
	oldKey     []byte
	oldKeyTill time.Time
	signer     ed25519.PrivateKey
	peerKeys   map[string][]ed25519.PublicKey
	roundTrip  func(time.Duration)
	promises   Promises
	members    map[string]netip.AddrPort
	known      map[string]bool
	senders    map[string]*sender
	sent       []sentAt
	stats      Stats
	// changed is signalled when a peer says something new about a failover
	// IP (see Changed).
	changed chan struct{}
	// holderHeard is signalled when a peer's heartbeat claims an address
	// (see HolderHeard).
	holderHeard chan struct{}
	// answered is signalled when this node answered a challenge (see
	// Answered).
	answered chan struct{}
	// keyed is signalled when this node gets a key to send with (see
	// Keyed).
	keyed chan struct{}
}

// sentAt says that every datagram numbered seq or above was sent at time or
// later.
type sentAt struct {
	seq  uint64
	time time.Time
}

// sender is what this node knows of one member: its replay guard, when the
// last datagram it accepted arrived, and what it said of each failover IP;
// and the number and time of the last heartbeat this node sent it, which
// its ack times.
type sender struct {
	guard      replayGuard
	heardAt    time.Time
	lastResync time.Time
	fips       map[string]*heard
	sentSeq    uint64
	sentAt     time.Time
	// answeredAt is when this node last answered a challenge of the peer
	// with a round of heartbeats (firstAnswer).
	answeredAt time.Time
}

// heard is what one peer last said about one failover IP, by this node's
// clock.
type heard struct {
	lastHeard   time.Time
	lastClaimed time.Time
	seenOwner   string
	seenEpoch   int64
	holding     bool
	withdrawn   bool
	// confirmed is when this node sent the heartbeat the peer's latest
	// report echoed, or that of an earlier report saying the same.
	confirmed time.Time
}

// NewPeers binds the UDP socket of node's heartbeats to listen (port 0
// picks one; see Addr). A nil clk is the real clock. Nothing is sent or
// accepted before SetKey and SetMembership.
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
	p := &Peers{node: node, conn: conn, clk: clk, senders: map[string]*sender{}, members: map[string]netip.AddrPort{}, known: map[string]bool{},
		peerKeys: map[string][]ed25519.PublicKey{}, changed: make(chan struct{}, 1), holderHeard: make(chan struct{}, 1), answered: make(chan struct{}, 1),
		keyed: make(chan struct{}, 1)}
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
	} else {
		signal(p.keyed)
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

// sendKeys returns the shared key and the signing key, or nils while
// either is missing.
func (p *Peers) sendKeys() ([]byte, ed25519.PrivateKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.key == nil || p.signer == nil {
		return nil, nil
	}
	return p.key, p.signer
}

// SetSigner sets this node's own signing key (Identity.Signer): nothing is
// sent without one.
func (p *Peers) SetSigner(key ed25519.PrivateKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.signer = key
}

// SetPeerKeys sets the public keys each front publishes (ParsePeerKeys of
// its FrontNode status.peerKeys): a datagram from a member is accepted only
// when one of its own keys signed it. Only members' keys are kept.
func (p *Peers) SetPeerKeys(keys map[string][]ed25519.PublicKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peerKeys = make(map[string][]ed25519.PublicKey, len(keys))
	for node, k := range keys {
		p.peerKeys[node] = slices.Clone(k[:min(len(k), MaxPeerKeys)])
	}
}

// OnRoundTrip sets a function told every round trip measured to a peer:
// from this node's heartbeat to the peer's ack of it, less the time the
// peer kept it.
func (p *Peers) OnRoundTrip(f func(time.Duration)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.roundTrip = f
}

// SetPromises sets where the promises of this node's confirmations are kept.
// Without it, confirmations go without their ack and prove nothing.
func (p *Peers) SetPromises(pr Promises) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.promises = pr
}

// SetMembership sets the fronts this node accepts heartbeats from, and
// sends to, and the failover IPs it keeps claims about. It forgets at once
// whatever it kept of departed fronts and failover IPs, so that what it
// keeps is bounded by the cluster, not by what senders say.
func (p *Peers) SetMembership(m Membership) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.members = maps.Clone(m.Fronts)
	p.known = make(map[string]bool, len(m.FailoverIPs))
	for _, fip := range m.FailoverIPs {
		p.known[fip] = true
	}
	for node, s := range p.senders {
		if _, ok := p.members[node]; !ok {
			delete(p.senders, node)
			continue
		}
		maps.DeleteFunc(s.fips, func(fip string, _ *heard) bool { return !p.known[fip] })
	}
}

// Send sends claims to every node of nodes that is a member, in as many
// datagrams as they need, each with the next sequence number and with the
// ack of the last heartbeat accepted from that node. Confirmations are
// promised first (SetPromises). It returns ErrNoKey while no key is set,
// and otherwise tries every node before returning the errors.
func (p *Peers) Send(nodes []string, claims []Claim) error {
	key, signer := p.sendKeys()
	if key == nil {
		return ErrNoKey
	}
	batches, err := batchClaims(p.node, claims)
	if err != nil {
		return err
	}
	targets, promised, errs := p.targets(nodes, claims)
	if len(promised) > 0 && (p.promises == nil || p.promises.Promise(promised) != nil) {
		// Unkept promises must not be made: send no ack at all.
		for i := range targets {
			targets[i].hasAck = false
		}
	}
	for _, t := range targets {
		if len(t.unvouched) > 0 {
			batches, _ = batchClaims(p.node, unvouch(claims, t.unvouched))
		}
		for _, batch := range batches {
			m := &message{Type: msgHeartbeat, Claims: batch, HasAck: t.hasAck, AckNonce: t.ackNonce, AckSeq: t.ackSeq}
			if t.hasAck {
				m.AckDelay = p.clk.Since(t.heardAt)
			}
			at, err := p.send(t.addr, m, key, signer)
			if err != nil {
				errs = append(errs, err)
				break
			}
			p.noteSent(t.node, m.Seq, at)
		}
	}
	return errors.Join(errs...)
}

// send numbers, signs and sends m, and returns when it handed it to the
// socket.
func (p *Peers) send(to netip.AddrPort, m *message, key []byte, signer ed25519.PrivateKey) (time.Time, error) {
	if len(signer) != ed25519.PrivateKeySize {
		return time.Time{}, ErrNoKey
	}
	m.Node, m.Nonce, m.Seq = p.node, p.nonce, p.seq.Add(1)
	b, err := encode(m, key, signer)
	if err != nil {
		return time.Time{}, err
	}
	at := p.clk.Now()
	if _, err := p.conn.WriteToUDPAddrPort(b, to); err != nil {
		return time.Time{}, fmt.Errorf("sending heartbeat to %s: %w", to, err)
	}
	p.sends.Add(1)
	return at, nil
}

// noteSent records the last heartbeat sent to node, whose ack times the
// round trip; only for a node already heard, so that sending keeps nothing
// of a node that never answered.
func (p *Peers) noteSent(node string, seq uint64, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.senders[node]; s != nil {
		s.sentSeq, s.sentAt = seq, at
	}
}

// target is where one heartbeat goes, and what it acks: the heartbeat
// accepted from it at heardAt.
type target struct {
	node     string
	addr     netip.AddrPort
	hasAck   bool
	ackNonce nonce
	ackSeq   uint64
	heardAt  time.Time
	// unvouched are the failover IPs whose claims go to this target
	// withdrawn (promise).
	unvouched map[string]bool
}

// targets resolves nodes, notes the time of this sending for the acks that
// will echo it, and returns the promises the acks make, to be recorded
// before they leave: outside the lock, which receiving takes too, for
// recording them may wait a little on the disk.
func (p *Peers) targets(nodes []string, claims []Claim) ([]target, map[string]Promise, []error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.logSent()
	var targets []target
	var errs []error
	promised := map[string]Promise{}
	for _, node := range nodes {
		addr, ok := p.members[node]
		if !ok || node == p.node {
			errs = append(errs, fmt.Errorf("no heartbeat address for %s: not a member", node))
			continue
		}
		t := target{node: node, addr: addr}
		if s := p.senders[node]; s != nil && s.guard.established {
			t.hasAck, t.ackNonce, t.ackSeq, t.heardAt = true, s.guard.nonce, s.guard.seq, s.heardAt
			t.unvouched = promise(promised, node, claims, s)
		}
		targets = append(targets, t)
	}
	return targets, promised, errs
}

// promise notes, in promised, the failover IPs of claims that confirm
// node's ownership — not holding, not withdrawn, seeing node as the owner,
// which claimed the address in its last heartbeat s heard — and returns
// those it would confirm but for that claim: they go to node withdrawn.
func promise(promised map[string]Promise, node string, claims []Claim, s *sender) map[string]bool {
	var unvouched map[string]bool
	for _, c := range claims {
		if c.Holding || c.Withdrawn || c.SeenOwner != node {
			continue
		}
		if h := s.fips[c.FailoverIP]; h == nil || !h.holding {
			if unvouched == nil {
				unvouched = map[string]bool{}
			}
			unvouched[c.FailoverIP] = true
			continue
		}
		if s.heardAt.After(promised[c.FailoverIP].HeardAt) {
			promised[c.FailoverIP] = Promise{HeardAt: s.heardAt, Epoch: c.SeenEpoch}
		}
	}
	return unvouched
}

// unvouch returns claims with those of the failover IPs in unvouched marked
// withdrawn.
func unvouch(claims []Claim, unvouched map[string]bool) []Claim {
	out := slices.Clone(claims)
	for i := range out {
		if unvouched[out[i].FailoverIP] {
			out[i].Withdrawn = true
		}
	}
	return out
}

// logSent records that the datagrams numbered from the next one on are sent
// from now on.
func (p *Peers) logSent() {
	// The time first: a datagram numbered after the load of the counter is
	// sent after it, even by another goroutine.
	now := p.clk.Now()
	e := sentAt{seq: p.seq.Load() + 1, time: now}
	if len(p.sent) == sentLog {
		p.sent = append(p.sent[:0], p.sent[1:]...)
	}
	p.sent = append(p.sent, e)
}

// sentTime is a time no later than when this node sent its datagram
// numbered seq; zero when it no longer knows.
func (p *Peers) sentTime(seq uint64) time.Time {
	i, found := slices.BinarySearchFunc(p.sent, seq, func(e sentAt, seq uint64) int { return cmp.Compare(e.seq, seq) })
	if !found {
		i--
	}
	if i < 0 || seq >= p.seq.Load()+1 {
		return time.Time{}
	}
	return p.sent[i].time
}

// batchClaims splits claims into groups that each fit one datagram.
func batchClaims(node string, claims []Claim) ([][]Claim, error) {
	// The header, flags, an echo, an ack, the claim count, the signature
	// and the MAC.
	overhead := headerMin + len(node) + 1 + NonceSize + ackSize + 2 + trailerSize
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
	case errors.Is(err, errVersion):
		p.count(func(s *Stats) { s.OldVersion++ })
		return
	case err != nil:
		p.count(func(s *Stats) { s.Malformed++ })
		return
	case m.Node == p.node:
		// Our own datagram, looped back or replayed at us.
		return
	}
	// Membership and address first: they cost nothing, and a flood of
	// strangers never reaches the signature check.
	pubs, ok := p.senderKeys(m.Node, from)
	if !ok {
		return
	}
	if !signedBy(b, pubs) {
		p.count(func(s *Stats) { s.BadSignature++ })
		return
	}
	_, signer := p.sendKeys()
	switch m.Type {
	case msgHeartbeat:
		p.onHeartbeat(m, from, keys[0], signer)
	case msgChallenge:
		p.onChallenge(m, from, keys[0], signer)
	}
}

// senderKeys returns the published keys of node when it is a member sending
// from its own address, and counts why not.
func (p *Peers) senderKeys(node string, from netip.AddrPort) ([]ed25519.PublicKey, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	addr, ok := p.members[node]
	switch {
	case !ok:
		p.stats.UnknownSender++
		return nil, false
	case addr.Addr().Unmap() != from.Addr().Unmap():
		p.stats.WrongSource++
		return nil, false
	case len(p.peerKeys[node]) == 0:
		p.stats.NoSenderKey++
		return nil, false
	}
	return p.peerKeys[node], true
}

func (p *Peers) onHeartbeat(m *message, from netip.AddrPort, key []byte, signer ed25519.PrivateKey) {
	p.mu.Lock()
	s := p.sender(m.Node)
	v, ch := s.guard.admit(m.Nonce, m.Seq, m.HasEcho, m.Echo, randomNonce)
	var rtt time.Duration
	var timed bool
	switch v {
	case accept:
		p.stats.Accepted++
		now := p.clk.Now()
		s.heardAt = now
		var confirmed time.Time
		if m.HasAck && m.AckNonce == p.nonce {
			confirmed = p.sentTime(m.AckSeq)
			rtt, timed = now.Sub(s.sentAt)-m.AckDelay, m.AckSeq == s.sentSeq
		}
		p.record(s, m.Claims, now, confirmed)
	case replayed:
		p.stats.Replayed++
		if now := p.clk.Now(); now.Sub(s.heardAt) >= resyncEvery && now.Sub(s.lastResync) >= resyncEvery {
			s.lastResync, v, ch = now, challenge, s.guard.resync(randomNonce)
		}
	case challenge:
		p.stats.Challenged++
	}
	observe := p.roundTrip
	p.mu.Unlock()
	if timed && rtt >= 0 && observe != nil {
		observe(rtt)
	}
	if v == challenge {
		// Best effort: the sender's next heartbeat draws the same challenge.
		_, _ = p.send(from, &message{Type: msgChallenge, To: m.Node, ToNonce: m.Nonce, Challenge: ch}, key, signer)
	}
}

// onChallenge answers a challenge to this boot of this node with an empty
// heartbeat that echoes it: claims follow in the next regular heartbeat, so
// that no claim is ever sent later than it was made.
func (p *Peers) onChallenge(m *message, from netip.AddrPort, key []byte, signer ed25519.PrivateKey) {
	p.count(func(s *Stats) { s.Challenges++ })
	if m.To != p.node || m.ToNonce != p.nonce {
		return
	}
	if _, err := p.send(from, &message{Type: msgHeartbeat, HasEcho: true, Echo: m.Challenge}, key, signer); err == nil && p.firstAnswer(m.Node) {
		signal(p.answered)
	}
}

// firstAnswer tells whether node's challenge is the first this node
// answered in resyncEvery: a replayed challenge draws an answer, but no
// more than one round of heartbeats a second per peer.
func (p *Peers) firstAnswer(node string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, now := p.sender(node), p.clk.Now()
	if !s.answeredAt.IsZero() && now.Sub(s.answeredAt) < resyncEvery {
		return false
	}
	s.answeredAt = now
	return true
}

func (p *Peers) sender(node string) *sender {
	s, ok := p.senders[node]
	if !ok {
		s = &sender{fips: map[string]*heard{}}
		p.senders[node] = s
	}
	return s
}

// record keeps what claims say, for the failover IPs this node knows only.
// confirmed is when this node sent the heartbeat they ack, zero if none:
// without an ack, a report that repeats the previous one keeps its
// confirmation, and one that says something new has none.
func (p *Peers) record(s *sender, claims []Claim, now, confirmed time.Time) {
	for _, c := range claims {
		if !p.known[c.FailoverIP] {
			p.stats.IgnoredClaims++
			continue
		}
		h, ok := s.fips[c.FailoverIP]
		if !ok {
			h = &heard{}
			s.fips[c.FailoverIP] = h
		}
		same := ok && h.seenOwner == c.SeenOwner && h.seenEpoch == c.SeenEpoch && h.holding == c.Holding && h.withdrawn == c.Withdrawn
		if !confirmed.IsZero() || !same {
			h.confirmed = confirmed
		}
		if !same {
			p.signalChange()
		}
		h.lastHeard, h.seenOwner, h.seenEpoch, h.holding, h.withdrawn = now, c.SeenOwner, c.SeenEpoch, c.Holding, c.Withdrawn
		if c.Holding {
			h.lastClaimed = now
			signal(p.holderHeard)
		}
	}
}

// Changed is signalled, once however many changes happen before it is read,
// when a peer says something new about a failover IP: a later epoch, another
// owner, a claim started or ended. The failover loop decides at once rather
// than at its next tick.
func (p *Peers) Changed() <-chan struct{} { return p.changed }

// HolderHeard is signalled, once however many arrive before it is read,
// when a heartbeat claiming an address arrives: a node that holds none
// answers at once (agent failover.sendHeartbeats), so that the holder's
// proof is as old as the round trip rather than up to a keepalive.
func (p *Peers) HolderHeard() <-chan struct{} { return p.holderHeard }

// Answered is signalled, once however many arrive before it is read, when
// this node answered a challenge: a peer takes this boot from that answer
// on, and has dropped the claims of the heartbeat it challenged. The
// heartbeats go again at once (agent failover.sendHeartbeats), so that a
// restarted node is heard a round trip after its first heartbeat rather
// than a keepalive later. At most once a second per peer (firstAnswer).
func (p *Peers) Answered() <-chan struct{} { return p.answered }

// Keyed is signalled when the node gets a key to send with after having
// none, as at start: the agent reads the peer Secret while its informers
// list, and a restarted owner's first heartbeats, which start the
// handshake its peers confirm it after, would otherwise wait a keepalive.
func (p *Peers) Keyed() <-chan struct{} { return p.keyed }

func (p *Peers) signalChange() { signal(p.changed) }

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
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
			Confirmed:   h.confirmed,
			Withdrawn:   h.withdrawn,
		})
	}
	slices.SortFunc(view, func(a, b ownership.Peer) int { return strings.Compare(a.Node, b.Node) })
	return view
}

// Unheard returns, sorted, the nodes of nodes that are members and from
// which no authenticated datagram arrived for after: never since since,
// or not since the last one more than after ago.
func (p *Peers) Unheard(nodes []string, since time.Time, after time.Duration) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clk.Now()
	var out []string
	for _, node := range nodes {
		if _, member := p.members[node]; !member {
			continue
		}
		last := since
		if s := p.senders[node]; s != nil && s.heardAt.After(last) {
			last = s.heardAt
		}
		if now.Sub(last) >= after {
			out = append(out, node)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Stats returns the counts of datagrams so far.
func (p *Peers) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Sent = p.sends.Load()
	return s
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
