package failoversim

import (
	"time"

	"github.com/webfarm/webfarm/agent/ownership"
)

// claim is one heartbeat's word about the FailoverIP (heartbeat.Claim).
type claim struct {
	holding   bool
	withdrawn bool
	seenOwner string
	seenEpoch int64
}

// datagram is one peer message (heartbeat.message). A process's boot nonce
// is its agent's inc; seq numbers every datagram the process sends.
type datagram struct {
	from, boot int
	seq        uint64
	// hasClaim is false for the empty heartbeat that answers a challenge.
	hasClaim bool
	claim    claim
	hasEcho  bool
	echo     int
	hasAck   bool
	ackBoot  int
	ackSeq   uint64
	// challenge is set on a challenge to boot toBoot.
	challenge, toBoot int
	// key is the sender's key that signed it (identity.go).
	key int
}

// pendingChallenge is a challenge issued to one boot of a sender.
type pendingChallenge struct{ boot, challenge int }

// maxPendingChallenges is heartbeat's bound on challenges kept per sender.
const maxPendingChallenges = 4

// peerState is what one agent process knows of one peer, by its own clock
// (heartbeat.sender and the heard record of the one FailoverIP).
type peerState struct {
	// The replay guard: the established boot and the last accepted seq.
	established bool
	boot        int
	seq         uint64
	pending     []pendingChallenge
	heardAt     time.Time
	lastResync  time.Time

	heard     bool
	lastHeard time.Time
	claimed   time.Time
	seenOwner string
	seenEpoch int64
	holding   bool
	withdrawn bool
	confirmed time.Time

	// recorded is the last heartbeat received from the peer, as a
	// listener on the wire has it (forge).
	recorded     datagram
	hasRecording bool
	// answeredAt is when this process last answered the peer's challenge
	// with a round of heartbeats (onChallenge).
	answeredAt time.Time
}

// sentAt says that every datagram numbered seq or above was sent at time or
// later (heartbeat.sentAt).
type sentAt struct {
	seq  uint64
	time time.Time
}

// sentLog is how many sendings a process remembers the time of.
const sentLog = 256

// resyncEvery is heartbeat's resync pace.
const resyncEvery = time.Second

// sendHeartbeats is failover.sendHeartbeats and heartbeat.Peers.Send: to
// every other front (the owner, the previous owner, the candidates and the
// fronts of the farm: here every front), each datagram acking the last one
// accepted from its target; the confirmations are promised before anything
// leaves. A node that withdrew from the epoch says so and promises
// nothing; one whose record was lost, and has not withdrawn from its first
// view's epoch yet, sends no ack at all (promiseFile.Promise refuses).
func (a *agent) sendHeartbeats() {
	if !a.have || !a.concerned() {
		return
	}
	st := a.view.status
	c := claim{holding: a.mem.Holding || ownership.ClaimsForProof(a.last, st.forAgent(), a.name), seenOwner: st.Owner, seenEpoch: st.Epoch,
		withdrawn: st.Owner != a.name && a.withdrawn >= st.Epoch}
	a.logSent()
	var promised time.Time
	unvouched := -1
	for i, b := range a.w.agents {
		p := &a.peers[i]
		if b == a || !p.established || c.holding || c.withdrawn || c.seenOwner != b.name {
			continue
		}
		if !p.heard || !p.holding {
			// An owner that does not claim the address is vouched for
			// by nobody (heartbeat.promise).
			unvouched = i
		} else if p.heardAt.After(promised) {
			promised = p.heardAt
		}
	}
	acks := !(a.unknownPast && !promised.IsZero())
	if !promised.IsZero() && acks {
		a.promise(promised)
	}
	for i, b := range a.w.agents {
		if b == a {
			continue
		}
		p := &a.peers[i]
		d := datagram{hasClaim: true, claim: c}
		d.claim.withdrawn = c.withdrawn || i == unvouched
		if p.established && acks {
			d.hasAck, d.ackBoot, d.ackSeq = true, p.boot, p.seq
		}
		a.send(i, d)
	}
}

// send numbers d, signs it and sends it to agent i; nothing before the
// node signs (heartbeat.ErrNoKey).
func (a *agent) send(i int, d datagram) {
	if !a.signs() {
		return
	}
	a.seq++
	d.from, d.boot, d.seq, d.key = a.idx, a.inc, a.seq, a.disk.key
	a.w.net.datagram(agentParty(a.idx), agentParty(i), d)
}

// deliverDatagram is deliver for a datagram's arrival, with no closure
// unless the process is paused.
func (a *agent) deliverDatagram(d datagram) {
	switch {
	case !a.up:
	case a.paused:
		a.deferred = append(a.deferred, func() { a.receive(d) })
	default:
		a.receive(d)
	}
}

// logSent is heartbeat.Peers.logSent.
func (a *agent) logSent() {
	if len(a.sent) == sentLog {
		a.sent = append(a.sent[:0], a.sent[1:]...)
	}
	a.sent = append(a.sent, sentAt{seq: a.seq + 1, time: a.clk.Now()})
}

// sentTime is heartbeat.Peers.sentTime: no later than when this process
// sent its datagram seq; zero when it no longer knows.
func (a *agent) sentTime(seq uint64) time.Time {
	var at time.Time
	for _, e := range a.sent {
		if e.seq > seq {
			break
		}
		at = e.time
	}
	if seq > a.seq {
		return time.Time{}
	}
	return at
}

func (a *agent) receive(d datagram) {
	if !a.verifies(d) {
		a.w.tracef("%s refuses a datagram of %s signed by key %d: not the key it knows", a.name, a.w.agents[d.from].name, d.key)
		return
	}
	if d.challenge != 0 {
		a.onChallenge(d)
		return
	}
	// What a listener on the wire could record, for replayedRecording.
	a.peers[d.from].recorded, a.peers[d.from].hasRecording = d, true
	a.onHeartbeat(d)
}

// onHeartbeat is heartbeat.Peers.onHeartbeat behind the replay guard.
func (a *agent) onHeartbeat(d datagram) {
	p := &a.peers[d.from]
	now := a.clk.Now()
	switch {
	case p.established && d.boot == p.boot && d.seq > p.seq:
		p.seq = d.seq
	case d.hasEcho && p.answers(d.boot, d.echo):
		// A handshake, or a resync of the current boot.
		p.established, p.boot, p.seq, p.pending = true, d.boot, d.seq, nil
	case p.established && d.boot == p.boot:
		// Replayed: a resync once the sender has gone unheard for a while.
		if now.Sub(p.heardAt) >= resyncEvery && now.Sub(p.lastResync) >= resyncEvery {
			p.lastResync = now
			a.challenge(d.from, d.boot)
		}
		return
	default:
		a.challenge(d.from, d.boot)
		return
	}
	p.heardAt = now
	if !d.hasClaim {
		return
	}
	var confirmed time.Time
	if d.hasAck && d.ackBoot == a.inc {
		confirmed = a.sentTime(d.ackSeq)
	}
	c := d.claim
	same := p.heard && p.seenOwner == c.seenOwner && p.seenEpoch == c.seenEpoch && p.holding == c.holding && p.withdrawn == c.withdrawn
	if !confirmed.IsZero() || !same {
		p.confirmed = confirmed
	}
	if !same {
		// Peers.Changed: the loop decides at once.
		a.wake()
	}
	p.heard, p.lastHeard, p.seenOwner, p.seenEpoch, p.holding, p.withdrawn = true, now, c.seenOwner, c.seenEpoch, c.holding, c.withdrawn
	if c.holding {
		p.claimed = now
		a.afterLocal(0, a.echoHolder)
	}
}

func (p *peerState) answers(boot, echo int) bool {
	for _, c := range p.pending {
		if c.boot == boot && c.challenge == echo {
			return true
		}
	}
	return false
}

// challenge sends boot of agent from its pending challenge, issuing one if
// there is none.
func (a *agent) challenge(from, boot int) {
	p := &a.peers[from]
	ch := 0
	for _, c := range p.pending {
		if c.boot == boot {
			ch = c.challenge
		}
	}
	if ch == 0 {
		a.w.challenges++
		ch = a.w.challenges
		if len(p.pending) == maxPendingChallenges {
			p.pending = append(p.pending[:0], p.pending[1:]...)
		}
		p.pending = append(p.pending, pendingChallenge{boot: boot, challenge: ch})
	}
	a.send(from, datagram{challenge: ch, toBoot: boot})
}

// onChallenge answers a challenge to this boot with an empty heartbeat that
// echoes it, then sends the heartbeats at once (heartbeat.Peers.Answered,
// failover.sendHeartbeats), once a second per challenger at most: the
// challenger dropped the claims of the heartbeat it challenged.
func (a *agent) onChallenge(d datagram) {
	if d.toBoot != a.inc || !a.signs() {
		return
	}
	a.send(d.from, datagram{hasEcho: true, echo: d.challenge})
	p, now := &a.peers[d.from], a.clk.Now()
	if !p.answeredAt.IsZero() && now.Sub(p.answeredAt) < resyncEvery {
		return
	}
	p.answeredAt = now
	a.afterLocal(0, a.beat)
}

// peerView is heartbeat.Peers.View: every peer that sent a claim, sorted.
// It reuses one buffer: Decide keeps nothing of its input.
func (a *agent) peerView() []ownership.Peer {
	view := a.viewBuf[:0]
	defer func() { a.viewBuf = view }()
	for i, p := range a.peers {
		if !p.heard {
			continue
		}
		view = append(view, ownership.Peer{
			Node: a.w.agents[i].name, LastHeard: p.lastHeard, LastClaimed: p.claimed,
			SeenOwner: p.seenOwner, SeenEpoch: p.seenEpoch, Confirmed: p.confirmed, Withdrawn: p.withdrawn,
		})
	}
	return view
}

// forgery is how a datagram in the name of a node, made by someone who
// holds the shared key but not that node's own key, reaches an agent
// (finding 5).
type forgery int

const (
	// fromGhost names a node that is no front.
	fromGhost forgery = iota
	// spoofedNewBoot spoofs a front's source address, with a boot nonce of
	// its own, signed with the forger's key.
	spoofedNewBoot
	// spoofedCurrentBoot also copies the front's current boot nonce, seen
	// on the wire, with a sequence number forged far ahead.
	spoofedCurrentBoot
	// replayedRecording sends again the front's last heartbeat to this
	// agent, recorded on the wire: signed by the front itself.
	replayedRecording
)

// forge delivers to this agent a heartbeat forged in the name of node.
// heartbeat.Peers refuses a sender that is no member (and one whose source
// is not its member's address), then every datagram that the sender's own
// published key does not verify: a forger who spoofs a front's source
// cannot sign as that front, so nothing it makes reaches the replay guard.
// What is left to it is a recording of the front's own datagrams, which
// the replay guard refuses (a replay of the current boot) or challenges at
// the real front (an older boot).
func (a *agent) forge(node string, how forgery, c claim) {
	from := -1
	for i, b := range a.w.agents {
		if b.name == node && b != a {
			from = i
		}
	}
	if from < 0 {
		a.w.tracef("%s refuses a forged heartbeat from %s: not a member", a.name, node)
		return
	}
	if how != replayedRecording {
		a.w.tracef("%s refuses a forged heartbeat from %s claiming %+v: not signed by %s's key", a.name, node, c, node)
		return
	}
	d, ok := a.peers[from].recorded, a.peers[from].hasRecording
	if !ok {
		a.w.tracef("%s: no heartbeat of %s recorded to replay", a.name, node)
		return
	}
	a.deliver(func() { a.onHeartbeat(d) })
}
