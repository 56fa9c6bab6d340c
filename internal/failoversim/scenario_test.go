package failoversim

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/webfarm/webfarm/agent/ownership"
)

// The named scenarios: the findings of issue 9 that the simulation can
// express, and the scenarios the earlier agent-only simulation had. Each
// runs a farm at the CRD defaults (keepalive 500ms, deadtime 2s, guard
// 500ms) on a clean network, with front1 the preferred node (autoFailback
// brings the address to it once it is heard).

// scenario is a farm of n fronts that has settled: front1 answers.
func scenario(t *testing.T, n int, gate bool) *World {
	t.Helper()
	return settle(t, farm(n, gate))
}

// farm is a farm of n fronts, front1 preferred, that has not run yet.
func farm(n int, gate bool) *World {
	cfg := DefaultConfig(n)
	cfg.Gate, cfg.PreferredNode, cfg.AutoFailback, cfg.Trace = gate, "front1", true, true
	return NewWorld(cfg, 1)
}

// settle runs w three seconds and wants front1 to answer then.
func settle(t *testing.T, w *World) *World {
	t.Helper()
	w.Run(3 * time.Second)
	if got := w.answering(); !slices.Equal(got, []string{"front1"}) {
		t.Fatalf("after settling, %v answer, want front1\n%s", got, w.Trace())
	}
	return w
}

// wantSafe fails the test if two fronts ever answered together.
func wantSafe(t *testing.T, w *World) {
	t.Helper()
	if at, who, bad := w.Violation(); bad {
		t.Errorf("%s answer together at %v, %v in all\n%s", who, at, w.Overlap(), w.Trace())
	}
}

// wantAnswering fails the test unless exactly want answers now.
func wantAnswering(t *testing.T, w *World, want ...string) {
	t.Helper()
	if got := w.answering(); !slices.Equal(got, want) {
		t.Errorf("at %v %v answer, want %v\n%s", w.Now(), got, want, w.Trace())
	}
}

// runUntil runs w until global time until and wants want alone to answer
// then, and never two fronts together.
func runUntil(t *testing.T, w *World, until time.Duration, want string) {
	t.Helper()
	w.Run(until)
	wantSafe(t, w)
	wantAnswering(t, w, want)
}

// runUntilOneOf runs w until global time until and wants exactly one of
// want to answer then, and never two fronts together.
func runUntilOneOf(t *testing.T, w *World, until time.Duration, want ...string) {
	t.Helper()
	w.Run(until)
	wantSafe(t, w)
	wantOneOf(t, w, want...)
}

// wantOneOf fails the test unless exactly one of want answers now.
func wantOneOf(t *testing.T, w *World, want ...string) {
	t.Helper()
	if got := w.answering(); len(got) != 1 || !slices.Contains(want, got[0]) {
		t.Errorf("at %v %v answer, want one of %v\n%s", w.Now(), got, want, w.Trace())
	}
}

// isolate cuts every link of front name, both ways, from the given time.
func isolate(w *World, name string, at time.Duration, what string, pick func(p, from, to int) bool) {
	p := agentParty(w.front(name).idx)
	w.At(at, name+": "+what, func() { w.net.cutMany(func(f, t int) bool { return pick(p, f, t) }) })
}

func everyLink(p, f, t int) bool     { return f == p || t == p }
func outgoing(p, f, _ int) bool      { return f == p }
func apiPath(p, f, t int) bool       { return (f == p && t == apiParty) || (f == apiParty && t == p) }
func incomingPeers(p, f, t int) bool { return t == p && f >= 2 }

// Finding 1: a dead or stalled agent leaves the address answering. Without
// the dead-man gate, the old owner answers alongside the new one for as
// long as it stays dead; with it, it stops within its grant.
func TestScenarioFinding1DeadAgentKeepsAnswering(t *testing.T) {
	for _, tc := range []struct {
		name string
		kill func(w *World, a *agent)
	}{
		{"SIGSTOP", func(_ *World, a *agent) { a.pause() }},
		{"SIGKILL", func(_ *World, a *agent) { a.crash() }},
		{"restart blocked on the API server", func(w *World, a *agent) {
			a.crash()
			isolate(w, a.name, w.Now(), "API server unreachable", apiPath)
			w.At(w.Now()+time.Millisecond, a.name+": agent restarts with its memory", func() { a.restart(true) })
		}},
	} {
		for _, gate := range []bool{false, true} {
			t.Run(tc.name+", "+gateName(gate), func(t *testing.T) {
				w := scenario(t, 3, gate)
				a := w.front("front1")
				w.At(w.Now(), "front1's agent "+tc.name, func() { tc.kill(w, a) })
				w.Run(w.Now() + 10*time.Second)
				if !gate {
					if _, _, bad := w.Violation(); !bad {
						t.Errorf("without the gate front1 should answer beside the new owner (the finding)\n%s", w.Trace())
					}
					return
				}
				wantSafe(t, w)
				wantOneOf(t, w, others(w)...)
			})
		}
	}
}

func gateName(gate bool) string {
	if gate {
		return "with the dead-man gate"
	}
	return "without the gate"
}

// Finding 2: after a hard-loss move nobody tells the old owner. A mute
// owner (all it sends is lost; it still hears its peers) keeps proving
// itself alive through its peers while the controller gives the address to
// another front, whose heartbeats then go to the new candidates only. The
// peers' datagrams may reach it late: the owner must stop answering before
// the new owner starts, whatever the delay.
func TestScenarioFinding2MuteOwner(t *testing.T) {
	for _, n := range []int{2, 3} {
		for _, lag := range []time.Duration{0, 50 * time.Millisecond, 550 * time.Millisecond, time.Second, 3 * time.Second} {
			t.Run(fmt.Sprintf("%d fronts, peers reach it %v late", n, lag), func(t *testing.T) {
				w := cutOff(t, n, lag, cut{"muted (all it sends is lost)", outgoing})
				failsOver(t, w, w.Now())
			})
		}
	}
}

// The owner loses only its API path: it keeps holding through its peers,
// which hear it and vouch for it, for as long as that lasts — the address
// does not move for an outage of the API server alone.
func TestScenarioOwnerLosesOnlyTheAPI(t *testing.T) {
	w := cutOff(t, 3, 0, cut{"API server unreachable", apiPath})
	runUntil(t, w, w.Now()+10*time.Second, "front1")
}

// An owner that lost only the API server keeps hearing its peers, late. A
// late report proves the peer's word only from when the owner sent the
// heartbeat it acks (Peer.Confirmed), so the delay can shorten the owner's
// proof, never extend it past the moment its peers withdraw: a short delay
// leaves the address where it is, a long one (from deadtime-guard less a
// keepalive on: the confirmation then gets that old between two arrivals)
// makes the owner fence itself, its peers withdraw, and the address move —
// never to two fronts at once.
func TestScenarioDelayedDatagramsOnlyShortenTheProof(t *testing.T) {
	for _, tt := range []struct {
		lag  time.Duration
		want string
	}{{50 * time.Millisecond, "front1"}, {550 * time.Millisecond, "front1"}, {1200 * time.Millisecond, "front2"}, {3 * time.Second, "front2"}} {
		t.Run(fmt.Sprintf("peers reach it %v late", tt.lag), func(t *testing.T) {
			w := cutOff(t, 3, tt.lag, cut{"API server unreachable", apiPath})
			runUntil(t, w, w.Now()+10*time.Second, tt.want)
		})
	}
}

// cut names the links of a front that a scenario cuts.
type cut struct {
	what string
	pick func(p, from, to int) bool
}

// cutOff settles a farm of n fronts and cuts front1, its owner, off as cuts
// say. Every peer's datagrams reach front1 lag late all along, so that it
// hears a steady stream of late reports when it is cut off.
func cutOff(t *testing.T, n int, lag time.Duration, cuts ...cut) *World {
	t.Helper()
	w := farm(n, true)
	if lag > 0 {
		w.At(0, fmt.Sprintf("front1: peer datagrams reach it %v late", lag), func() {
			for i := 1; i < n; i++ {
				w.net.slow(agentParty(i), agentParty(0), lag)
			}
		})
	}
	settle(t, w)
	// front1 hears a peer only once it answered a challenge, which takes
	// the slow link twice; then let the late stream reach it as long.
	w.Run(w.Now() + 2*lag)
	for _, c := range cuts {
		isolate(w, "front1", w.Now(), c.what, c.pick)
	}
	return w
}

// failsOver runs w ten seconds on and wants one front other than front1
// alone to answer then, never beside another; it logs when that front
// started to, from cutAt. Which voter follows is not the protocol's to say:
// the first report of the owner unheard that the controller reads names
// it, and the voters' withdrawals come within a message delay of each
// other.
func failsOver(t *testing.T, w *World, cutAt time.Duration) {
	t.Helper()
	runUntilOneOf(t, w, w.Now()+10*time.Second, others(w)...)
	if from, ok := w.answeringSince(); ok {
		t.Logf("%v answers %v after front1 was cut off (deadtime+guard is %v)", w.answering(), from-cutAt, w.cfg.Timing.Deadtime+w.cfg.Timing.Guard)
	}
}

// others names every front but front1.
func others(w *World) []string { return w.cfg.Nodes[1:] }

// Finding 4: a timing edit reaches the controller before an isolated
// owner. The owner fences itself by the old deadtime-guard; the controller
// moves the address after the new deadtime+guard.
func TestScenarioFinding4DeadtimeLoweredWhileIsolated(t *testing.T) {
	w := scenario(t, 3, true)
	now := w.Now()
	isolate(w, "front1", now, "isolated", everyLink)
	lower := ownership.Timing{Keepalive: 100 * time.Millisecond, Deadtime: 400 * time.Millisecond, Guard: 100 * time.Millisecond}
	w.At(now+time.Millisecond, "deadtime lowered to 400ms (keepalive 100ms, guard 100ms)", func() { w.api.setTiming(lower) })
	runUntilOneOf(t, w, now+10*time.Second, others(w)...)
}

// Timing edits take effect safely: the deadtime is raised, the controller
// sees the raise but its status write fails, and the deadtime is cut again
// while the owner is isolated. Agents act only on the timing the controller
// wrote into the status, so the owner never used the raise that the
// controller's fencing timing does not record (random schedule 95358).
func TestScenarioTimingRaiseNeverWritten(t *testing.T) {
	w := scenario(t, 3, true)
	now := w.Now()
	var heal func()
	w.At(now, "the controller's writes fail from now on (it still watches)", func() { heal = w.net.cut(ctrlParty, apiParty) })
	raised := ownership.Timing{Keepalive: 500 * time.Millisecond, Deadtime: 6 * time.Second, Guard: 500 * time.Millisecond}
	w.At(now+time.Millisecond, "deadtime raised to 6s", func() { w.api.setTiming(raised) })
	isolate(w, "front1", now+500*time.Millisecond, "isolated", everyLink)
	w.At(now+600*time.Millisecond, "deadtime cut back to 2s", func() { w.api.setTiming(w.cfg.Timing) })
	w.At(now+700*time.Millisecond, "the controller's writes succeed again", func() { heal() })
	// front2 and front3 withdraw together: the first report the controller
	// reads names the successor.
	runUntilOneOf(t, w, now+10*time.Second, "front2", "front3")
}

// Finding 6: holding through an API outage needed every other voter to
// answer, so with many fronts one dead voter dropped the address for the
// whole outage, although the owner heard a majority. A strict majority of
// the voters now vouches (agent/ownership/quorum.go).
func TestScenarioFinding6OneDeadCandidateDuringAPIOutage(t *testing.T) {
	w := scenario(t, 7, true)
	now := w.Now()
	w.At(now, "API server outage", func() { w.net.cutMany(func(f, t int) bool { return f == apiParty || t == apiParty }) })
	w.At(now+time.Second, "front7: power off", w.front("front7").powerOff)
	runUntil(t, w, now+30*time.Second, "front1")
}

// Finding 7: any change to a node's Lease counts as life. The owner loses
// power; someone else keeps writing its Lease (holderIdentity "intruder"),
// and the controller never moves the address.
func TestScenarioFinding7LeaseWrittenBySomeoneElse(t *testing.T) {
	w := scenario(t, 3, true)
	now := w.Now()
	w.At(now, "front1: power off", w.front("front1").powerOff)
	w.At(now, "front1's Lease written by someone else every 500ms from now on", func() {})
	for at := now; at < now+10*time.Second; at += 500 * time.Millisecond {
		w.At(at, "", func() { w.api.writeLease(0, "intruder") })
	}
	// Whichever voter withdraws first hands the address to the other.
	w.Run(now + 10*time.Second)
	wantSafe(t, w)
	if got := w.answering(); !slices.Equal(got, []string{"front2"}) && !slices.Equal(got, []string{"front3"}) {
		t.Errorf("at %v %v answer, want front2 or front3\n%s", w.Now(), got, w.Trace())
	}
}

// Finding 5: one shared key let anyone speak as any front. A forged
// heartbeat reporting a huge epoch kept the owner from ever holding again.
// heartbeat.Peers now refuses a sender that is not a member, and any
// datagram that its sender's own published key does not verify: a front,
// or anyone with the shared key, spoofing another front's address cannot
// sign as it, whatever boot and number it makes up. What is left is a
// recording of the front's own heartbeat, sent again, which the replay
// guard refuses.
func TestScenarioFinding5ForgedHugeEpoch(t *testing.T) {
	for _, tc := range []struct {
		name string
		node string
		how  forgery
	}{
		{"from a front that does not exist", "ghost", fromGhost},
		{"spoofing front2 with a boot of its own", "front2", spoofedNewBoot},
		{"spoofing front2's current boot, numbered far ahead", "front2", spoofedCurrentBoot},
		{"replaying front2's last heartbeat, recorded on the wire", "front2", replayedRecording},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := scenario(t, 3, true)
			now := w.Now()
			a := w.front("front1")
			w.At(now, "front1 hears a forged heartbeat from "+tc.node+" reporting epoch 2^40", func() {
				a.forge(tc.node, tc.how, claim{seenOwner: tc.node, seenEpoch: 1 << 40})
			})
			w.Run(now + 10*time.Second)
			wantSafe(t, w)
			if len(w.answering()) != 1 {
				t.Errorf("at %v %v answer, want one front\n%s", w.Now(), w.answering(), w.Trace())
			}
		})
	}
}

// The scenarios of the earlier agent-only simulation, on the real
// controller now.

func TestScenarioStartUp(t *testing.T) {
	cfg := DefaultConfig(3)
	cfg.Trace = true
	w := NewWorld(cfg, 1)
	w.Run(20 * time.Second)
	wantSafe(t, w)
	if got := w.answering(); len(got) != 1 {
		t.Errorf("after start-up %v answer, want one\n%s", got, w.Trace())
	}
}

func TestScenarioOwnerIsolated(t *testing.T) {
	w := scenario(t, 3, true)
	now := w.Now()
	isolate(w, "front1", now, "isolated", everyLink)
	// The owner stops answering once neither its Lease nor its peers prove
	// it alive for deadtime-guard (plus a tick and a renewal's reply).
	w.Run(now + 1500*time.Millisecond + 200*time.Millisecond)
	if slices.Contains(w.answering(), "front1") {
		t.Errorf("front1 still answers %v after it was isolated\n%s", w.Now()-now, w.Trace())
	}
	runUntilOneOf(t, w, now+10*time.Second, others(w)...)
}

func TestScenarioAPIOutageKeepsServing(t *testing.T) {
	w := scenario(t, 3, true)
	now := w.Now()
	w.At(now, "API server outage", func() { w.net.cutMany(func(f, t int) bool { return f == apiParty || t == apiParty }) })
	runUntil(t, w, now+time.Minute, "front1")
	// A candidate falls silent during the outage. Today the owner holds
	// without its Lease only while every other candidate confirms it, so
	// it stops answering, and nobody answers. This is finding 6 on a small
	// farm: the majority rule that fixes it would keep front1 answering
	// here, and changes this expectation with it.
	isolate(w, "front3", w.Now(), "isolated", everyLink)
	w.Run(w.Now() + w.cfg.Timing.Deadtime)
	wantSafe(t, w)
	wantAnswering(t, w)
}

func TestScenarioOwnerDeafToItsPeers(t *testing.T) {
	w := cutOff(t, 3, 0, cut{"API server unreachable", apiPath}, cut{"deaf to its peers", incomingPeers})
	failsOver(t, w, w.Now())
}

func TestScenarioPlannedHandOff(t *testing.T) {
	w := scenario(t, 3, true)
	now := w.Now()
	w.At(now, "front1 drained", func() { w.api.setDraining(0, true) })
	// A planned hand-off waits for no deadtime: a few API round trips and
	// at most a tick on each side.
	runUntil(t, w, now+300*time.Millisecond, "front2")
	if got := w.front("front2").mem.HeldEpoch; got != w.api.st.status.Epoch {
		t.Errorf("front2 holds at epoch %d, the status says %d", got, w.api.st.status.Epoch)
	}
}

// Found by the random schedules (seeds 1250 and 19856 of
// WEBFARM_SIM_KINDS=partitions,pauses,crashes,controller-restarts,loss-bursts,drains):
// an agent forgets, when it restarts, that it fenced itself
// at the current epoch — memoryFile saves held addresses only, not what it
// gave up — while the controller, reading its Fenced report, hands the
// address over as released. The restarted agent holds again at the epoch it
// gave up (here through its peers, its API path lost again), beside the new
// owner.
func TestScenarioRestartForgetsAFence(t *testing.T) {
	for _, withState := range []bool{true, false} {
		t.Run(fmt.Sprintf("with state %v", withState), func(t *testing.T) {
			w := scenario(t, 3, true)
			now := w.Now()
			a := w.front("front1")
			w.At(now, "controller dies", w.ctrl.stop)
			var heal func()
			w.At(now, "front1: API server unreachable and deaf to its peers", func() {
				p := agentParty(0)
				heal = w.net.cutMany(func(f, t int) bool { return apiPath(p, f, t) || incomingPeers(p, f, t) })
			})
			// front1 fences itself after deadtime-guard; meanwhile it is
			// drained, which no controller turns into a release request.
			w.At(now+1600*time.Millisecond, "front1 healed and drained", func() {
				heal()
				w.api.setDraining(0, true)
			})
			// Its agent restarts once its Fenced report is in, and loses
			// the API server again.
			var restartOnReport func()
			restartOnReport = func() {
				if r := w.api.st.fronts[0].report; !r.some || r.state != "Fenced" {
					w.after(time.Millisecond, restartOnReport)
					return
				}
				w.tracef("front1: agent restarts (with state %v) and loses the API server", withState)
				a.crash()
				a.restart(withState)
				var cutOnList func()
				cutOnList = func() {
					if !a.have {
						w.after(100*time.Microsecond, cutOnList)
						return
					}
					p := agentParty(0)
					w.net.cutMany(func(f, t int) bool { return apiPath(p, f, t) })
				}
				cutOnList()
			}
			w.At(now+1600*time.Millisecond, "", restartOnReport)
			w.At(now+3*time.Second, "controller starts", w.ctrl.start)
			w.Run(now + 10*time.Second)
			wantSafe(t, w)
		})
	}
}

// Found by the random schedules (seeds 19018 and 19758 of
// WEBFARM_SIM_KINDS=partitions,pauses,crashes,controller-restarts,loss-bursts,drains):
// an agent restarted without its memory does not
// know that the address is still on its link, with the gate its previous
// process opened. Asked to release (here: drained while it was down), it
// reports Released without removing
// anything (failover.decide removes only what the memory says it holds);
// the controller hands the address over at once, and the old owner answers
// until its gate expires — for ever without the gate.
func TestScenarioStatelessRestartReleasesNothing(t *testing.T) {
	for _, gate := range []bool{true, false} {
		t.Run(gateName(gate), func(t *testing.T) {
			w := scenario(t, 3, gate)
			now := w.Now()
			a := w.front("front1")
			w.At(now, "front1: agent crashes", a.crash)
			w.At(now+10*time.Millisecond, "front1 drained", func() { w.api.setDraining(0, true) })
			w.At(now+100*time.Millisecond, "front1: agent restarts without its memory", func() { a.restart(false) })
			runUntil(t, w, now+10*time.Second, "front2")
		})
	}
}

// A quiet API: in steady state the owner renews its Lease every
// QuietLeaseInterval like every other front, at the CRD's defaults, at its
// fastest settings and at the samples' slower ones. Its voters echo its
// heartbeats as they arrive, so that its proof stays a round trip old; a
// voter that withdrew at start-up and hears the owner again gets a new
// epoch rather than leaving the owner on its Lease for good.
func TestScenarioQuietLease(t *testing.T) {
	for _, timing := range []ownership.Timing{
		{Keepalive: 200 * time.Millisecond, Deadtime: 700 * time.Millisecond, Guard: 150 * time.Millisecond},
		{Keepalive: 100 * time.Millisecond, Deadtime: 300 * time.Millisecond, Guard: 50 * time.Millisecond},
		{Keepalive: 500 * time.Millisecond, Deadtime: 2 * time.Second, Guard: 500 * time.Millisecond},
	} {
		t.Run(fmt.Sprintf("keepalive %v deadtime %v guard %v", timing.Keepalive, timing.Deadtime, timing.Guard), func(t *testing.T) {
			cfg := DefaultConfig(3)
			cfg.Timing, cfg.PreferredNode, cfg.AutoFailback, cfg.Trace = timing, "front1", true, true
			w := settle(t, NewWorld(cfg, 1))
			w.Run(10 * time.Second)
			before := slices.Clone(w.api.leaseWrites)
			w.Run(70 * time.Second)
			wantSafe(t, w)
			wantAnswering(t, w, "front1")
			for i, name := range cfg.Nodes {
				// Every 10 s, and one more for the phase.
				if n := w.api.leaseWrites[i] - before[i]; n > 7 {
					t.Errorf("%s renewed its Lease %d times in 60 s of steady state, want at most 7", name, n)
				}
			}
		})
	}
}

// The owner and the only other candidate lose power together while the
// third front drains; the drain then ends. The draining front votes at the
// owner's epoch (it runs and hears heartbeats), so it can report the owner
// unheard and take over. When only candidates voted, nobody was left who
// could, and the address stayed unheld for good (seed 90858 of
// TestRandomSchedules).
func TestScenarioOwnerDiesWithTheOnlyOtherCandidate(t *testing.T) {
	w := farm(3, true)
	w.At(0, "front3: drain", func() { w.api.setDraining(2, true) })
	settle(t, w)
	now := w.Now()
	w.At(now, "front1: power off for good", w.front("front1").powerOff)
	w.At(now, "front2: power off for good", w.front("front2").powerOff)
	w.At(now+time.Second, "front3: drain ends", func() { w.api.setDraining(2, false) })
	runUntil(t, w, now+30*time.Second, "front3")
}

// A front dies, and later the API server goes down. The owner needs every
// voter's confirmation to hold through the outage, and the dead one gives
// none; once the dead front's Lease is older than the presence window, the
// controller renews the epoch without it (rule 6), and the owner keeps the
// address through the outage. Before, the dead voter stayed until the next
// epoch, and the outage took the address down (the common case of finding
// 6; the rarer one, a death during the outage, still does).
func TestScenarioDeadVoterLeftOutBeforeAnAPIOutage(t *testing.T) {
	w := scenario(t, 3, true)
	now := w.Now()
	w.At(now, "front3: power off for good", w.front("front3").powerOff)
	outage := now + 40*time.Second
	w.At(outage, "API server outage", func() { w.net.cutMany(func(f, t int) bool { return f == apiParty || t == apiParty }) })
	runUntil(t, w, outage+30*time.Second, "front1")
}

// A new owner whose Lease renewals reach the API server late: its voters
// confirm it as soon as it claims the address to be proved alive
// (ownership.ClaimsForProof). Before that claim, voters confirmed only a
// holder, so a new owner's first proof had to be an acknowledged Lease
// renewal; here each one comes back older than the proof window, the
// voters withdrew from every epoch a deadtime after it began, and the
// address went from epoch to epoch without ever being held for long.
func TestScenarioNewOwnerWithSlowLeaseHoldsThroughItsVoters(t *testing.T) {
	w := scenario(t, 3, true)
	now := w.Now()
	lag := 1500 * time.Millisecond // each way: a round trip of twice the deadtime
	for _, name := range []string{"front2", "front3"} {
		p := agentParty(w.front(name).idx)
		w.net.slow(p, apiParty, lag)
		w.net.slow(apiParty, p, lag)
	}
	w.At(now, "front1 drained", func() { w.api.setDraining(0, true) })
	// The successor learns it is named a lag after the controller wrote
	// it; its voters' confirmations come a round trip of datagrams later.
	runUntilOneOf(t, w, now+2*lag+time.Second, "front2", "front3")
	if t.Failed() {
		return
	}
	held := w.answering()
	epoch := w.api.st.status.Epoch
	runUntil(t, w, now+2*lag+20*time.Second, held[0])
	if got := w.api.st.status.Epoch; got != epoch {
		t.Errorf("the epoch went from %d to %d while %s held: the new owner lost its proof\n%s", epoch, got, held[0], w.Trace())
	}
}
