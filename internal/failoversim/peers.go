package failoversim

import (
	"slices"
	"time"

	"github.com/webfarm/webfarm/agent/ownership"
)

// claim is one heartbeat's word about the FailoverIP (heartbeat.Claim).
type claim struct {
	holding   bool
	seenOwner string
	seenEpoch int64
}

// peerState is what one agent process knows of one peer, by its own clock
// (heartbeat.Peers: the sender's heard record and its replay guard).
type peerState struct {
	// boot is the sender's process whose heartbeats are accepted; 0 none.
	// A new boot is accepted only after a challenge round trip.
	boot      int
	heard     bool
	lastHeard time.Time
	claimed   time.Time
	seenOwner string
	seenEpoch int64
}

// sendHeartbeats is failover.sendHeartbeats: to every other candidate and
// the owner, as this node's status says, what it holds and sees.
func (a *agent) sendHeartbeats() {
	if !a.have || !a.concerned() {
		return
	}
	st := a.view.status
	c := claim{holding: a.mem.Holding, seenOwner: st.Owner, seenEpoch: st.Epoch}
	for i, b := range a.w.agents {
		if b == a || (b.name != st.Owner && !slices.Contains(st.Candidates, b.name)) {
			continue
		}
		a.sendTo(i, b, c)
	}
}

func (a *agent) sendTo(i int, b *agent, c claim) {
	from, boot := a.idx, a.inc
	a.w.net.datagram(agentParty(a.idx), agentParty(i), func() { b.deliver(func() { b.onHeartbeat(from, boot, c) }) })
}

// onHeartbeat records a heartbeat, or challenges a sender's new boot.
func (a *agent) onHeartbeat(from, boot int, c claim) {
	p := &a.peers[from]
	if p.boot != boot {
		a.challenge(from, boot)
		return
	}
	now := a.clk.Now()
	p.heard, p.lastHeard, p.seenOwner, p.seenEpoch = true, now, c.seenOwner, c.seenEpoch
	if c.holding {
		p.claimed = now
	}
}

// challenge asks the sender's boot to echo a challenge; the echo, an empty
// heartbeat, establishes the boot, and its claims count from its next
// heartbeat on (heartbeat.Peers.onChallenge).
func (a *agent) challenge(from, boot int) {
	me, inc := a.idx, a.inc
	b := a.w.agents[from]
	a.w.net.datagram(agentParty(me), agentParty(from), func() {
		b.deliver(func() {
			if b.inc != boot {
				return
			}
			a.w.net.datagram(agentParty(from), agentParty(me), func() {
				a.deliver(func() {
					if a.inc == inc {
						a.peers[from].boot = boot
					}
				})
			})
		})
	})
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
			SeenOwner: p.seenOwner, SeenEpoch: p.seenEpoch,
		})
	}
	return append(view, a.forged...)
}

// forge makes this agent's process believe it heard p: a datagram that
// the shared key authenticates, whoever sent it (finding 5).
func (a *agent) forge(p ownership.Peer) { a.forged = append(a.forged, p) }
