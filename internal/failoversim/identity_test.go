package failoversim

import (
	"testing"
	"time"
)

// hears tells whether a has established b's current boot: it accepts b's
// heartbeats.
func hears(a, b *agent) bool {
	p := a.peers[b.idx]
	return p.established && p.boot == b.inc
}

// A node whose agent restarts without its disk makes a new key, and its
// peers hear it only once their views of its FrontNode show that key: a
// peer cut off from the API server refuses it meanwhile, one that sees the
// key hears it, and the one cut off hears it once its watch is back.
func TestScenarioNewKeyHeardOnceSeen(t *testing.T) {
	w := scenario(t, 3, true)
	now := w.Now()
	blind, restarted, seeing := w.front("front1"), w.front("front2"), w.front("front3")
	oldKey := restarted.disk.key
	var heal func()
	w.At(now, "front1: API path cut", func() {
		p := agentParty(blind.idx)
		heal = w.net.cutMany(func(f, t int) bool { return apiPath(p, f, t) })
	})
	w.At(now+time.Millisecond, "front2: agent crashes", restarted.crash)
	w.At(now+100*time.Millisecond, "front2: agent restarts without its disk", func() { restarted.restart(false) })
	cutFor := 3 * time.Second
	for at := now + 200*time.Millisecond; at < now+cutFor; at += 10 * time.Millisecond {
		w.Run(at)
		if hears(blind, restarted) {
			t.Fatalf("at %v front1 hears front2's new boot, whose key it has not seen\n%s", w.Now(), w.Trace())
		}
	}
	if restarted.disk.key == oldKey || !hears(seeing, restarted) {
		t.Fatalf("front2's key %d (was %d), front3 hears it: %v; want a new key, heard\n%s", restarted.disk.key, oldKey, hears(seeing, restarted), w.Trace())
	}
	healed := w.Now()
	w.At(healed, "front1: API path back", func() { heal() })
	for !hears(blind, restarted) {
		if w.Now() > healed+5*time.Second {
			t.Fatalf("front1 does not hear front2 5s after its API path came back\n%s", w.Trace())
		}
		w.Run(w.Now() + 10*time.Millisecond)
	}
	t.Logf("front1 hears front2 %v after its API path came back", w.Now()-healed)
	w.Run(w.Now() + 10*time.Second)
	wantSafe(t, w)
	if len(w.answering()) != 1 {
		t.Errorf("at %v %v answer, want one front\n%s", w.Now(), w.answering(), w.Trace())
	}
}

// heardClaim tells whether a has heard a claim of b's current boot since
// from.
func heardClaim(a, b *agent, from time.Time) bool {
	p := a.peers[b.idx]
	return hears(a, b) && p.heard && !p.lastHeard.Before(from)
}

// A restarted owner's first heartbeat only draws its voters' challenges,
// and they drop its claims. Its heartbeats go again as soon as it has
// answered, so that the voters hear its claims a few one-way delays after
// its first heartbeat, not a keepalive later (TestE2EResilience's agent
// restart: on a loaded machine the restart itself takes most of the
// deadtime, and a voter that hears the owner's claims late withdraws).
func TestScenarioRestartedOwnerHeardAfterHandshake(t *testing.T) {
	cfg := DefaultConfig(3)
	cfg.Gate, cfg.PreferredNode, cfg.AutoFailback, cfg.Trace = true, "front1", true, true
	// One delay for every datagram: a bridge keeps their order, and a
	// claim overtaking the answer to its challenge is challenged again.
	cfg.Net = NetConfig{MinDelay: time.Millisecond, MaxDelay: time.Millisecond}
	w := settle(t, NewWorld(cfg, 1))
	now := w.Now()
	owner := w.front("front1")
	voters := []*agent{w.front("front2"), w.front("front3")}
	w.At(now, "front1: agent crashes", owner.crash)
	w.At(now+10*time.Millisecond, "front1: agent restarts with its memory", func() { owner.restart(true) })
	w.Run(now + 10*time.Millisecond)
	var firstSent time.Duration
	for firstSent == 0 {
		if w.Now() > now+5*time.Second {
			t.Fatalf("the restarted owner sent nothing for 5s\n%s", w.Trace())
		}
		w.Run(w.Now() + time.Millisecond)
		if !owner.lastBeat.IsZero() {
			firstSent = w.Now()
		}
	}
	since := map[*agent]time.Time{}
	for _, v := range voters {
		since[v] = v.clk.Now()
	}
	for _, v := range voters {
		for !heardClaim(v, owner, since[v]) {
			if w.Now() > firstSent+owner.keepalive/2 {
				t.Fatalf("%s has not heard the restarted owner's claims half a keepalive (%v) after its first heartbeat\n%s", v.name, owner.keepalive, w.Trace())
			}
			w.Run(w.Now() + time.Millisecond)
		}
		t.Logf("%s hears the restarted owner's claims %v after its first heartbeat (keepalive %v)", v.name, w.Now()-firstSent, owner.keepalive)
	}
	w.Run(w.Now() + 5*time.Second)
	wantSafe(t, w)
	wantAnswering(t, w, "front1")
}
