package failoversim

import (
	"time"

	"github.com/webfarm/webfarm/agent/heartbeat"
	"github.com/webfarm/webfarm/agent/ownership"
	"github.com/webfarm/webfarm/agent/witness"
)

// witnessState is agent/witness.Witness for the one FailoverIP: the epoch
// it writes witnesses at (0: none), their pace, the attempts under way, and
// the start of the latest one that landed.
type witnessState struct {
	epoch    int64
	every    time.Duration
	tried    time.Time
	inFlight int
	seq      int
	proof    struct {
		epoch int64
		start time.Time
	}
}

// setWitness is failover.witnessTarget and Witness.Set after a pass that
// decided d: an owner whose peers do not vouch for it writes a witness
// every keepalive, the first at once at a new epoch.
func (a *agent) setWitness(d ownership.Decision, every time.Duration) {
	st := a.view.status
	epoch := int64(0)
	if d.NeedsLease && st.WitnessCounted && st.Owner == a.name && st.Epoch > 0 && d.Epoch == st.Epoch {
		epoch = st.Epoch
	}
	ws := &a.witness
	if epoch != ws.epoch {
		ws.tried = time.Time{}
		if ws.proof.epoch != epoch {
			ws.proof.epoch, ws.proof.start = 0, time.Time{}
		}
	}
	changed := epoch != ws.epoch || every != ws.every
	ws.epoch, ws.every = epoch, every
	if changed {
		a.nextWitness()
	}
}

// nextWitness schedules the next attempt, an interval after the last one
// started, unless witness.MaxInFlight are under way or none is wanted.
func (a *agent) nextWitness() {
	ws := &a.witness
	ws.seq++
	if ws.inFlight >= witness.MaxInFlight || ws.epoch == 0 {
		return
	}
	seq := ws.seq
	at := ws.tried.Add(ws.every)
	if now := a.clk.Now(); ws.tried.IsZero() || at.Before(now) {
		at = now
	}
	a.w.atAgent(a.clk.globalAt(at), a, func() {
		if a.witness.seq == seq {
			a.writeWitness()
		}
	})
}

// writeWitness is one attempt (Witness.write): it proves this node alive
// from its start if the API server's reply comes within its timeout; the
// loop decides again at once (Witness.Proved).
func (a *agent) writeWitness() {
	ws := &a.witness
	start, epoch, open := a.clk.Now(), ws.epoch, true
	ws.tried = start
	ws.inFlight++
	finish := func(landed bool) {
		if !open {
			return
		}
		open = false
		a.witness.inFlight--
		p := &a.witness.proof
		if landed && a.witness.epoch == epoch && (p.epoch != epoch || start.After(p.start)) {
			p.epoch, p.start = epoch, start
			a.w.tracef("%s witnessed at epoch %d", a.name, epoch)
			a.wake()
		}
		a.nextWitness()
	}
	a.w.net.call(agentParty(a.idx), func() func() {
		landed := a.w.api.writeWitness(a.name, epoch)
		return a.proc(func() { finish(landed) })
	})
	a.afterLocal(heartbeat.AttemptTimeout(ws.every), func() { finish(false) })
	a.nextWitness()
}
