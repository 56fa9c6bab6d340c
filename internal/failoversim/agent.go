package failoversim

import (
	"slices"
	"time"

	"github.com/webfarm/webfarm/agent/heartbeat"
	"github.com/webfarm/webfarm/agent/ownership"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// defaultKeepalive paces a node that is a candidate for nothing
// (agent/failover.go).
const defaultKeepalive = 500 * time.Millisecond

// disk is the agent's state directory: its saved memory (agent/memory.go),
// the epoch it holds the address at and until when it was proved alive, by
// its own clock, and the epoch it gave up; and its promises
// (agent/promises.go). A restart without state finds neither file.
type disk struct {
	memory      bool
	holding     bool
	epoch       int64
	provenUntil proof
	gaveUp      ownership.Action
	gaveUpEpoch int64

	promises bool
	promised time.Time
	// withdrawn is the latest epoch withdrawn from (withdrawals.json), lost
	// with the promises.
	withdrawn int64
	// key is the node's own peer key (peer-key.json, identity.go).
	key int
}

// proof is until when the node is proved alive, by a proof that lasts
// window (memoryFile's proof).
type proof struct {
	until  time.Time
	window time.Duration
}

// promiseSlack and promiseWriteEvery are agent/promises.go's: how far
// ahead of a promise the file is written, and how often a node confirming
// an owner extends it.
const (
	promiseSlack      = 3 * time.Second
	promiseWriteEvery = 500 * time.Millisecond
)

// agent models agent/failover.go around the real ownership.Decide and
// Memory.After: a pass at every change its informers see (FailoverIP and
// FrontNodes), at every new word of a peer, and on time alone at the
// earliest recheck its last decision asks for, within [MinRecheck, Tick]
// (failover.run and ownership.NextPass); Lease renewals every keepalive whose
// success counts from the renewal's start; peer heartbeats every
// keepalive. The process can be
// paused (SIGSTOP: everything it would do waits), crashed and restarted
// with or without its saved memory; the node can lose power.
type agent struct {
	w    *World
	idx  int
	name string
	clk  *driftClock

	powered, up, paused bool
	inc                 int
	deferred            []func()

	// The process's state.
	mem       ownership.Memory
	written   proof // memoryFile.written: the proof the file holds
	proven    proof // memoryFile.provenUntil
	leaseLast time.Time
	peers     []peerState
	viewBuf   []ownership.Peer
	// seq numbers the datagrams this process sent; sent logs when.
	seq  uint64
	sent []sentAt
	// The promises of this process (promiseFile): the latest arrival it
	// confirmed, what the file says, and the start of a process that found
	// no record.
	promHeard, promWritten, promFloor time.Time
	// withdrawn is promiseFile.withdrawn; unknownPast: the record was lost
	// and the first view's epoch is not withdrawn from yet.
	withdrawn   int64
	unknownPast bool
	// needLease: the last pass found the Lease needed every keepalive.
	needLease bool
	// firstReport is the node's FrontNode report as the first list showed
	// it.
	firstReport report
	// startedAt is when the failover loop started, once the cache synced
	// (failover.run): a peer never heard counts as unheard from then, and
	// Decide's Started is it.
	startedAt time.Time
	// stateless: the process found no memory and has not yet given up the
	// epoch it first sees (failover.giveUpUnknownPast).
	stateless bool
	have      bool
	view      *apiState
	keepalive time.Duration
	// lastBeat is when the heartbeats last went; beatSeq numbers the
	// scheduled sends, the latest alone counting.
	lastBeat time.Time
	beatSeq  int
	// loopSeq names the loop's pending timer, the latest alone counting
	// (failover.run's resetTimer); woken: a wake-up is pending, as a
	// signal sits in a channel of one until the loop reads it.
	loopSeq int
	woken   bool
	// passFn and beatFn are a.pass and a.beat, bound once.
	passFn, beatFn func()
	// renewStart is when the last Lease renewal started; renewSeq names
	// the pending next one; renewing: an attempt is in flight;
	// renewFailed: the last one failed.
	renewStart            time.Time
	renewSeq              int
	renewing, renewFailed bool
	// renewals are this process's successful renewals by version
	// (LeaseRenewer.Started).
	renewals  map[string]time.Time
	published report
	// publishedOnce: this process has published a report.
	publishedOnce bool
	// patch numbers the FrontNode patch in flight; 0 when none is.
	patch, patches int
	// keyWriting: a write of the node's peer key is in flight; keyWrites
	// numbers them (identity.go).
	keyWriting bool
	keyWrites  int
	last       ownership.Decision
	// awaiting: last claims the address for a proof (failover.awaiting).
	awaiting bool
	// lastGen is the spec generation last decided on (ObservedGeneration).
	lastGen int64
	// witness is the agent's witness.Witness for the one FailoverIP.
	witness witnessState

	disk   disk
	kernel kernel
}

func newAgent(w *World, idx int, name string, clk *driftClock) *agent {
	a := &agent{w: w, idx: idx, name: name, clk: clk}
	a.passFn, a.beatFn = a.pass, a.beat
	return a
}

// proc binds fn to the current process: it is dropped if the process died,
// and held until it resumes if it is paused.
func (a *agent) proc(fn func()) func() {
	inc := a.inc
	return func() {
		if a.inc == inc {
			a.deliver(fn)
		}
	}
}

// deliver runs fn in the running process now, later if it is paused, never
// if it is dead.
func (a *agent) deliver(fn func()) {
	switch {
	case !a.up:
	case a.paused:
		a.deferred = append(a.deferred, fn)
	default:
		fn()
	}
}

func (a *agent) afterLocal(d time.Duration, fn func()) {
	a.w.atAgent(a.clk.globalAt(a.clk.Now().Add(d)), a, fn)
}

func (a *agent) powerOn() {
	a.powered = true
	a.start()
}

// powerOff is a hard loss: the process and the address are gone, the disk
// stays.
func (a *agent) powerOff() {
	a.crash()
	a.powered = false
	a.kernel = kernel{}
}

// crash kills the process; the kernel keeps the address and the gate.
func (a *agent) crash() {
	a.up, a.paused, a.deferred = false, false, nil
	a.inc++
}

// restart starts a new process; without state, the saved memory is lost.
func (a *agent) restart(withState bool) {
	if !withState {
		a.disk = disk{}
	}
	a.start()
}

func (a *agent) pause() { a.paused = true }

func (a *agent) resume() {
	a.paused = false
	run := a.deferred
	a.deferred = nil
	for _, fn := range run {
		a.deliver(fn)
	}
}

// start is a new agent process: it reads its saved memory back (failover.
// restore), renews its Lease at once, and decides once its cache has
// synced.
func (a *agent) start() {
	if !a.powered {
		return
	}
	a.up, a.paused, a.deferred = true, false, nil
	a.inc++
	a.ensureKey()
	a.keyWriting = false
	a.mem, a.written, a.proven = ownership.Memory{}, proof{}, proof{}
	a.last, a.awaiting = ownership.Decision{}, false
	a.restorePromises()
	a.leaseLast, a.have, a.published, a.patch, a.needLease, a.publishedOnce = time.Time{}, false, report{}, 0, false, false
	a.renewing, a.renewFailed = false, false
	a.renewals = map[string]time.Time{}
	a.witness = witnessState{}
	a.peers, a.seq, a.sent = make([]peerState, len(a.w.agents)), 0, a.sent[:0]
	a.keepalive = defaultKeepalive
	a.w.api.list(agentParty(a.idx), a)
	a.renew()
	a.lastBeat = time.Time{}
	a.scheduleBeat(a.keepalive)
	// The loop starts once the cache has synced: at the first view.
	a.loopSeq, a.woken = 0, false
}

// restoreMemory is failover.restore, once the first view is in: the
// memory read back, and every address on the link that it does not hold
// removed before anything is reported (vip.Manager.RemoveAllBut).
func (a *agent) restoreMemory() {
	d := a.disk
	a.stateless = !d.memory
	if d.holding {
		a.mem.Holding, a.mem.HeldEpoch = true, d.epoch
		a.written, a.proven = d.provenUntil, d.provenUntil
	}
	if d.gaveUp != ownership.NotOwner {
		a.mem.GaveUp, a.mem.GaveUpEpoch, a.mem.GaveUpReason = d.gaveUp, d.gaveUpEpoch, "given up before a restart"
	}
	if !a.mem.Holding && a.kernel.addr {
		a.w.tracef("%s: agent removes the address its previous process left", a.name)
		a.kernel.release()
	}
}

// restorePromises is promiseFile.load: the saved promises, or, without a
// record, every promise counted from now.
func (a *agent) restorePromises() {
	a.promHeard, a.promWritten, a.promFloor = a.disk.promised, a.disk.promised, time.Time{}
	a.withdrawn, a.unknownPast = a.disk.withdrawn, false
	if !a.disk.promises {
		a.promFloor, a.unknownPast = a.clk.Now(), true
		a.disk.promises = true
	}
}

// withdrawUnknownPast is promiseFile.withdrawUnknownPast: withdrawn from
// the current epoch if the node's FrontNode, as listed at the first view,
// reports the owner unheard at it (failover.reportedUnheard).
func (a *agent) withdrawUnknownPast() {
	if !a.unknownPast {
		return
	}
	a.unknownPast = false
	if r := a.firstReport; r.some && r.state == webfarmv1.VIPOwnerUnheard && r.epoch == a.view.status.Epoch {
		a.withdraw(r.epoch)
	}
}

// withdraw is promiseFile.withdraw, saved at once.
func (a *agent) withdraw(epoch int64) {
	if epoch > a.withdrawn {
		a.withdrawn = epoch
		a.disk.withdrawn = epoch
	}
}

// promise is promiseFile.Promise on a disk that saves within
// promiseWaitAtMost: the file is saved before the confirmations leave,
// ahead by promiseSlack, once it covers the promise by less than
// promiseSlack-promiseWriteEvery. (A slower disk sends the heartbeat
// without acks, as a lost ack would.)
func (a *agent) promise(heardAt time.Time) {
	if heardAt.Add(promiseSlack - promiseWriteEvery).After(a.promWritten) {
		a.promWritten = heardAt.Add(promiseSlack)
		a.disk.promised = a.promWritten
	}
	if heardAt.After(a.promHeard) {
		a.promHeard = heardAt
	}
}

// promised is promiseFile.promised.
func (a *agent) promised() time.Time {
	if a.promHeard.After(a.promFloor) {
		return a.promHeard
	}
	return a.promFloor
}

// scheduleBeat sends the heartbeats after d, unless a send before then
// schedules the next one (failover.sendHeartbeats).
func (a *agent) scheduleBeat(d time.Duration) { a.resetTimer(&a.beatSeq, d, a.beatFn) }

// resetTimer runs fn after d unless the timer named by *timer is reset
// again before then, as clock.Timer.Reset after Stop does.
func (a *agent) resetTimer(timer *int, d time.Duration, fn func()) {
	*timer++
	at := max(a.clk.globalAt(a.clk.Now().Add(d)), a.w.now)
	a.w.queue.push(at, event{fn: fn, a: a, inc: a.inc, timer: timer, tseq: *timer})
}

func (a *agent) beat() {
	a.sendHeartbeats()
	a.lastBeat = a.clk.Now()
	a.scheduleBeat(a.keepalive)
}

// echoHolder is failover.sendHeartbeats woken by a peer claiming an
// address: a node that holds none sends its heartbeats at once, acking the
// claim, so that the owner's proof is as fresh as the round trip rather
// than up to a keepalive older; its next go a keepalive and a half later
// unless the owner's next heartbeat comes first. Within echoFloor of its
// last send it answers once echoFloor has passed. Claimants do not echo,
// so that two of them never echo each other.
func (a *agent) echoHolder() {
	if a.mem.Holding || ownership.ClaimsForProof(a.last, a.view.status.forAgent(), a.name) {
		return
	}
	since := a.clk.Now().Sub(a.lastBeat)
	if since < a.keepalive/echoFloorDivisor {
		a.scheduleBeat(a.keepalive/echoFloorDivisor - since)
		return
	}
	a.sendHeartbeats()
	a.lastBeat = a.clk.Now()
	a.scheduleBeat(a.keepalive * 3 / 2)
}

// echoFloorDivisor: no echo within keepalive/8 of the last send.
const echoFloorDivisor = 8

// wake is a signal to the failover loop (failover.poke, Peers.Changed):
// one pass soon, however many signals come before it runs.
func (a *agent) wake() {
	if a.woken {
		return
	}
	a.woken = true
	a.afterLocal(0, func() {
		a.woken = false
		a.pass()
	})
}

// armLoop is failover.run's resetTimer after a pass: the next pass on time
// alone comes after d, unless a wake-up comes first.
func (a *agent) armLoop(d time.Duration) { a.resetTimer(&a.loopSeq, d, a.passFn) }

// intervalPoll is how often the LeaseRenewer reads its interval again
// while it waits (agent/heartbeat/lease.go).
const intervalPoll = 100 * time.Millisecond

// leaseInterval is failover.leaseInterval.
func (a *agent) leaseInterval() time.Duration {
	if a.needLease {
		return a.keepalive
	}
	return webfarmv1.QuietLeaseInterval
}

// setNeedLease is failover.setNeedLease: a renewer woken when the Lease is
// newly needed reads its interval again at once.
func (a *agent) setNeedLease(need bool) {
	was := a.needLease
	a.needLease = need
	if need && !was {
		a.wakeRenewer()
	}
}

// wakeRenewer is LeaseRenewer.Wake: a renewal at once if the interval has
// gone by since the last start, else at its end.
func (a *agent) wakeRenewer() {
	if a.renewing {
		return
	}
	a.renewSeq++
	seq := a.renewSeq
	at := a.renewStart.Add(a.leaseInterval())
	if now := a.clk.Now(); at.Before(now) {
		at = now
	}
	a.w.atAgent(a.clk.globalAt(at), a, func() {
		if a.renewSeq == seq {
			a.renew()
		}
	})
}

// renew is one LeaseRenewer attempt: it counts, from its start, if the
// reply comes within its timeout (heartbeat.attemptTimeout). The next
// starts an interval after this one; the renewer reads the interval again
// every intervalPoll as it waits, which nextRenewal models without the
// polls.
func (a *agent) renew() {
	start, interval := a.clk.Now(), a.leaseInterval()
	open := true
	a.renewing = true
	a.w.net.call(agentParty(a.idx), func() func() {
		version := a.w.api.writeLease(a.idx, a.name)
		return a.proc(func() {
			if open {
				open = false
				a.leaseLast = start
				a.renewals[version] = start
				a.renewing, a.renewFailed = false, false
				a.nextRenewal()
			}
		})
	})
	a.afterLocal(heartbeat.AttemptTimeout(interval), func() {
		if open {
			open = false
			a.renewing = false
			a.renewFailed = true
			a.nextRenewal()
		}
	})
	a.renewStart = start
}

// nextRenewal schedules the next renewal at the first poll of the waiting
// renewer that finds an interval gone by since the last start, once the
// attempt in flight is over; after a failure, at heartbeat.RetryAfter.
func (a *agent) nextRenewal() {
	if a.renewing {
		return
	}
	a.renewSeq++
	seq := a.renewSeq
	interval := a.leaseInterval()
	if a.renewFailed {
		interval = heartbeat.RetryAfter(interval)
	}
	at := a.renewStart.Add(interval)
	if now := a.clk.Now(); at.Before(now) {
		// The interval shrank: the next poll finds it gone by.
		polls := (now.Sub(a.renewStart) + intervalPoll - 1) / intervalPoll
		at = a.renewStart.Add(polls * intervalPoll)
	}
	a.w.atAgent(a.clk.globalAt(at), a, func() {
		if a.renewSeq == seq {
			a.renew()
		}
	})
}

// setKeepalive changes the pace of the heartbeats and of the renewals.
func (a *agent) setKeepalive(k time.Duration) {
	if k == a.keepalive {
		return
	}
	shorter := k < a.keepalive
	a.keepalive = k
	a.nextRenewal()
	if shorter {
		// failover.sendHeartbeats, woken by a shorter keepalive.
		a.scheduleBeat(max(0, k-a.clk.Now().Sub(a.lastBeat)))
	}
}

// watch is the agent's informers (FailoverIP and FrontNodes; the agent
// does not watch Leases): every event wakes the loop (Agent.poke, through
// the node loop). The first view is the synced cache: the loop starts
// with a pass.
func (a *agent) watch(s *apiState) {
	a.deliver(func() {
		first := !a.have
		if first {
			a.startedAt = a.clk.Now()
			a.firstReport = a.w.api.st.fronts[a.idx].report
			a.restoreMemory()
		}
		a.have, a.view = true, s
		a.syncKey()
		if first {
			a.pass()
			return
		}
		a.wake()
	})
}

// concerned is failover.concerned for the one FailoverIP: every node is a
// front of the farm that lists it.
func (a *agent) concerned() bool { return true }

// pass is failover.pass and failover.decide for the one FailoverIP.
func (a *agent) pass() {
	if !a.have {
		return
	}
	if !a.concerned() {
		a.setKeepalive(defaultKeepalive)
		a.setNeedLease(false)
		a.publish(report{})
		return
	}
	unheard := a.unheardFronts()
	a.giveUpUnknownPast()
	a.withdrawUnknownPast()
	timing, generation := a.view.agentTiming()
	a.setKeepalive(min(defaultKeepalive, timing.Keepalive))
	now := a.clk.Now()
	a.w.decisions++
	d := ownership.Decide(ownership.Input{
		Node: a.name, Address: Address, Status: a.view.status.forAgent(), Timing: timing,
		Memory: a.mem, LastAPIProof: a.lastAPIProof(now, timing.Deadtime-timing.Guard),
		Peers: a.peerView(), Promised: a.promised(), Withdrawn: a.withdrawn, Started: a.startedAt, Now: now,
	})
	if d.Action != a.last.Action || d.Epoch != a.last.Epoch {
		a.w.tracef("%s decides %s", a.name, d)
	}
	a.last = d
	awaited := a.awaiting
	a.awaiting = ownership.ClaimsForProof(d, a.view.status.forAgent(), a.name)
	if a.awaiting && !awaited {
		// failover.noteAwaiting: the claim goes at once.
		a.w.tracef("%s claims the address to be proved alive at epoch %d", a.name, d.Epoch)
		a.scheduleBeat(0)
	}
	switch {
	case d.Action == ownership.Withdraw:
		if a.withdrawn < d.Epoch {
			a.w.tracef("%s withdraws from epoch %d", a.name, d.Epoch)
			a.withdraw(d.Epoch)
			a.wakeRenewer()
		}
		a.remember(a.mem.After(d, now))
	case d.Announce():
		fresh := !a.mem.Holding
		a.remember(a.mem.After(d, now))
		a.proved(proof{now.Add(d.RecheckAfter), timing.Deadtime - timing.Guard}, timing.Keepalive)
		a.kernel.hold(a, now.Add(d.RecheckAfter))
		if fresh {
			// failover.sendHeartbeats woken by a take-over: the claim goes
			// at once, and the voters' echoes confirm it a round trip later.
			a.scheduleBeat(0)
		}
	case a.mem.Holding:
		a.kernel.release()
		a.remember(a.mem.After(d, now))
	default:
		a.remember(a.mem.After(d, now))
	}
	a.setNeedLease(d.NeedsLease || a.awaitsHandOff()) // as failover.pass: a withdrawn likely successor renews too
	a.setWitness(d, timing.Keepalive)
	state, ok := d.State()
	a.lastGen = generation
	a.publish(report{some: ok, epoch: d.Epoch, state: state, generation: a.lastGen, unheard: unheard, unheardAfter: d.UnheardAfter})
	a.armLoop(ownership.NextPass(a.w.cfg.Tick, d))
}

// awaitsHandOff is the agent's: a candidate renews its Lease every
// keepalive while another owner is asked to release, so that the renewal
// the controller acknowledges when it names it is fresh.
func (a *agent) awaitsHandOff() bool {
	st := a.view.status
	return st.ReleaseRequested && st.Owner != a.name && slices.Contains(st.Candidates, a.name)
}

// unheardFronts is failover.unheardFronts and Peers.Unheard: every other
// front (all of them are heartbeat targets here) not heard for deadtime.
func (a *agent) unheardFronts() uint64 {
	var out uint64
	timing, _ := a.view.agentTiming()
	now, deadtime := a.clk.Now(), timing.Deadtime
	for i, b := range a.w.agents {
		last := a.startedAt
		if a.peers[i].heardAt.After(last) {
			last = a.peers[i].heardAt
		}
		if b != a && now.Sub(last) >= deadtime {
			out |= 1 << i
		}
	}
	return out
}

// giveUpUnknownPast is failover.giveUpUnknownPast: a process that found no
// memory gives up the epoch of its first view, which its previous process
// may have given up.
func (a *agent) giveUpUnknownPast() {
	if !a.stateless {
		return
	}
	a.stateless = false
	if e := a.view.status.Epoch; e > 0 {
		a.mem.GaveUp, a.mem.GaveUpEpoch, a.mem.GaveUpReason = ownership.Release, e, "restarted without its memory"
	}
	a.save()
}

// lastAPIProof is failover.lastAPIProof: the renewal the status
// acknowledges, the witness that landed last at the status's epoch, or the
// start of the proof the memory file holds (memoryFile.restoredProof),
// whichever is latest.
func (a *agent) lastAPIProof(now time.Time, window time.Duration) time.Time {
	last, w := a.renewals[a.view.status.OwnerRenewal], a.written
	if len(a.view.status.Voters) == 0 {
		last = a.leaseLast
	}
	if p := a.witness.proof; a.view.status.WitnessCounted && p.epoch == a.view.status.Epoch && p.start.After(last) {
		last = p.start
	}
	if w.until.IsZero() {
		return last
	}
	saved := w.window
	if saved <= 0 {
		saved = window
	}
	if start := w.until.Add(-saved); !start.After(now) && start.After(last) {
		return start
	}
	return last
}

// remember is memoryFile.set: saved first when what a restart needs changed.
func (a *agent) remember(m ownership.Memory) {
	old := a.mem
	a.mem = m
	if old.Holding == m.Holding && old.HeldEpoch == m.HeldEpoch && old.GaveUp == m.GaveUp && old.GaveUpEpoch == m.GaveUpEpoch {
		return
	}
	if !m.Holding {
		a.proven, a.written = proof{}, proof{}
	}
	a.save()
}

// proved is memoryFile.proved: saved when it moved on by every, or its
// window changed.
func (a *agent) proved(p proof, every time.Duration) {
	a.proven = p
	if p.until.Sub(a.written.until) >= every || p.window != a.written.window {
		a.save()
	}
}

func (a *agent) save() {
	d := &a.disk
	d.memory, d.holding, d.epoch, d.provenUntil = true, a.mem.Holding, a.mem.HeldEpoch, proof{}
	d.gaveUp, d.gaveUpEpoch = a.mem.GaveUp, a.mem.GaveUpEpoch
	if a.mem.Holding {
		a.disk.provenUntil = a.proven
		a.written = a.proven
	}
}

// publish patches the FrontNode report when it changed, one patch at a
// time; a new process writes its first one whatever it is (the reporter
// starts with nothing published).
func (a *agent) publish(r report) {
	if (a.publishedOnce && r == a.published) || a.patch != 0 {
		return
	}
	a.patches++
	n := a.patches
	a.patch = n
	a.w.net.call(agentParty(a.idx), func() func() {
		a.w.api.patchReport(a.idx, r)
		return a.proc(func() {
			if a.patch == n {
				a.patch, a.published, a.publishedOnce = 0, r, true
				a.publish(a.currentReport())
			}
		})
	})
	// A lost patch is retried after the client's timeout.
	a.afterLocal(a.keepalive, func() {
		if a.patch == n {
			a.patch = 0
			a.publish(a.currentReport())
		}
	})
}

func (a *agent) currentReport() report {
	if !a.have || !a.concerned() {
		return report{}
	}
	state, ok := a.last.State()
	return report{some: ok, epoch: a.last.Epoch, state: state, generation: a.lastGen, unheard: a.unheardFronts(), unheardAfter: a.last.UnheardAfter}
}
