package heartbeat

// maxPendingChallenges bounds the challenges kept per sender. More than one,
// so that replays of a sender's old boots cannot push out the challenge its
// current boot is answering; the oldest goes first.
const maxPendingChallenges = 4

// replayGuard decides, for one sender node, which authenticated heartbeats
// are fresh. It accepts messages of one boot nonce at a time, each with a
// sequence number above the last accepted one. It adopts a new nonce only
// from a message echoing a challenge it issued for that nonce and has not
// used yet: a recording of any earlier boot, or of an earlier handshake,
// cannot echo it.
type replayGuard struct {
	established bool
	nonce       nonce
	seq         uint64
	pending     []pendingChallenge
}

type pendingChallenge struct {
	nonce     nonce
	challenge nonce
}

// verdict is what to do with a heartbeat.
type verdict int

const (
	// accept: fresh; use its claims.
	accept verdict = iota
	// replayed: the current nonce with a sequence number already seen.
	replayed
	// challenge: an unknown nonce; send the sender the returned challenge
	// and use nothing of the message.
	challenge
)

// admit judges a heartbeat with nonce n and sequence number seq, echoing
// echo when hasEcho. newChallenge draws a fresh random challenge.
func (g *replayGuard) admit(n nonce, seq uint64, hasEcho bool, echo nonce, newChallenge func() nonce) (verdict, nonce) {
	if g.established && n == g.nonce {
		switch {
		case seq > g.seq:
			g.seq = seq
		case hasEcho && g.answers(n, echo):
			// A re-synchronisation (resync): only the live boot can echo
			// a fresh challenge, and its number is above any it sent
			// before, so no recording gets in under it.
			g.seq, g.pending = seq, nil
		default:
			return replayed, nonce{}
		}
		return accept, nonce{}
	}
	if hasEcho && g.answers(n, echo) {
		// Every pending challenge dies with the handshake, so that a later
		// replay of this very message finds nothing to match.
		g.established, g.nonce, g.seq, g.pending = true, n, seq, nil
		return accept, nonce{}
	}
	return challenge, g.challengeFor(n, newChallenge)
}

// resync returns a challenge for the current nonce. A sender whose datagrams
// are refused as replays answers it with its current sequence number, which
// the guard then adopts: a forged number far ahead, made with the key,
// silences the sender only until the next resync.
func (g *replayGuard) resync(newChallenge func() nonce) nonce {
	return g.challengeFor(g.nonce, newChallenge)
}

func (g *replayGuard) answers(n, echo nonce) bool {
	for _, p := range g.pending {
		if p.nonce == n && p.challenge == echo {
			return true
		}
	}
	return false
}

// challengeFor returns the pending challenge for nonce n, issuing one if
// there is none: a sender whose answer was lost gets the same challenge again.
func (g *replayGuard) challengeFor(n nonce, newChallenge func() nonce) nonce {
	for _, p := range g.pending {
		if p.nonce == n {
			return p.challenge
		}
	}
	p := pendingChallenge{nonce: n, challenge: newChallenge()}
	if len(g.pending) == maxPendingChallenges {
		g.pending = append(g.pending[:0], g.pending[1:]...)
	}
	g.pending = append(g.pending, p)
	return p.challenge
}
