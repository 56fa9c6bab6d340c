package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/webfarm/webfarm/agent/heartbeat"
	"github.com/webfarm/webfarm/agent/ownership"
	"github.com/webfarm/webfarm/agent/vip"
	"github.com/webfarm/webfarm/agent/witness"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

const (
	// failoverTick bounds how late the agent acts on time alone (a proof of
	// liveness running out, a wait ending); changes wake it at once.
	failoverTick = 100 * time.Millisecond
	// defaultKeepalive paces the heartbeats of a node that is a candidate
	// for no failover IP.
	defaultKeepalive = 500 * time.Millisecond
	// proofSaveStep is how far a proof of liveness must move on before it
	// is saved again. A restarted agent holds only on the saved proof, so
	// the file may lag the proof held by little more than a pass: saved
	// only once it moved a keepalive, the Lease renewal that follows an API
	// outage (a keepalive or less past the peers' proof) was not saved, and
	// an owner restarted then fenced itself half a second early.
	proofSaveStep = failoverTick
)

// failover carries out, for every FailoverIP this node may hold, the decision
// of agent/ownership: it holds and announces the address, waits, releases
// it, or fences itself; it sends the peer heartbeats and reports each
// address in the FrontNode status.
type failover struct {
	a      *Agent
	memory *memoryFile

	wake        chan struct{}
	keepaliveNs atomic.Int64
	// tookOver wakes the heartbeats when the node starts holding an
	// address, or awaiting a proof to: its voters confirm only a claimant,
	// and they answer its first
	// claim at once, so that its proof through them starts a round trip
	// after the take-over rather than up to a keepalive later, while the
	// Lease renewal the controller acknowledged when it named it lasts only
	// deadtime minus guard.
	tookOver chan struct{}
	// shorterKeepalive wakes the heartbeats when the keepalive shrinks: a
	// new agent's first timer runs at the default, and its peers could
	// not hear it before they withdraw (ownership: handshakeAllowance).
	shorterKeepalive chan struct{}
	// needLease: some failover IP this node owns is not vouched for by its
	// peers with a keepalive to spare (ownership.Decision.NeedsLease).
	needLease atomic.Bool
	// leftovers: restore could not yet remove the addresses the previous
	// process left that the memory does not hold; no pass decides until
	// they are gone.
	leftovers bool
	// startedAt is when run started: a peer never heard counts as unheard
	// from then.
	startedAt time.Time
	// decided is, per FailoverIP, the action and epoch of the last
	// decision, so that each change is logged once (logChange): the
	// timeline of a hand-off or a fence, which a pass every failoverTick
	// would drown.
	decided map[string]decided
	// awaiting is, per FailoverIP, the last decision when it awaits a
	// proof of liveness (ownership.ClaimsForProof): the heartbeats claim
	// the address then, as a holder's do.
	awaitingMu sync.Mutex
	awaiting   map[string]ownership.Decision
}

// decided is what logChange compares.
type decided struct {
	action ownership.Action
	epoch  int64
	at     time.Time
}

func newFailover(a *Agent, memoryPath string) *failover {
	f := &failover{a: a, memory: &memoryFile{path: memoryPath}, wake: make(chan struct{}, 1), tookOver: make(chan struct{}, 1), shorterKeepalive: make(chan struct{}, 1)}
	f.keepaliveNs.Store(int64(defaultKeepalive))
	return f
}

func (f *failover) poke() { signal(f.wake) }

// keepalive is the smallest keepalive of the failover IPs this node may
// hold: the pace of its peer heartbeats.
func (f *failover) keepalive() time.Duration { return time.Duration(f.keepaliveNs.Load()) }

// leaseInterval is the pace of the Lease renewals: every keepalive while an
// address this node owns needs its Lease, else QuietLeaseInterval — the
// peers vouch for a live owner, and the controller needs the Lease of the
// others only to count them present.
func (f *failover) leaseInterval() time.Duration {
	if f.needLease.Load() {
		return f.keepalive()
	}
	return webfarmv1.QuietLeaseInterval
}

// setNeedLease records whether the Lease is needed every keepalive, and
// wakes the renewer when it newly is.
func (f *failover) setNeedLease(need bool) {
	if !f.needLease.Swap(need) && need {
		f.a.lease.Wake()
	}
}

// restore reads back what an earlier agent process held, so that a restart
// does not drop an address this node still owns, and removes every other
// failover address that process left on the node, before anything is
// reported: a memory lost or behind the link would otherwise let the agent
// report Released for an address still answering.
func (f *failover) restore(ctx context.Context) {
	if err := f.memory.load(); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Reading the ownership memory; holding nothing")
	}
	f.leftovers = true
	f.removeLeftovers(ctx)
}

// removeLeftovers removes, once, the failover addresses on the node that the
// memory does not hold; it tells whether they are gone.
func (f *failover) removeLeftovers(ctx context.Context) bool {
	if !f.leftovers {
		return true
	}
	var keep []netip.Addr
	for _, held := range f.memory.held() {
		// One of unknown address (an older file) is removed: holding it
		// again takes a pass, a second holder never.
		if addr, err := heldAddressOf(held); err == nil {
			keep = append(keep, addr.IP)
		}
	}
	if err := f.a.vips.RemoveAllBut(ctx, keep); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Removing the failover addresses a previous agent left; deciding nothing until they are gone")
		return false
	}
	f.leftovers = false
	return true
}

// run decides and acts every failoverTick and at every change of the cache
// or of what the peers say, and sends heartbeats every keepalive, until ctx
// is done.
func (f *failover) run(ctx context.Context) {
	f.startedAt = f.a.clock.Now()
	go f.a.witness.Run(ctx)
	timer := f.a.clock.NewTimer(f.pass(ctx))
	defer timer.Stop()
	// After the first pass, which sets the keepalive and what the
	// heartbeats claim: a restarted owner holds on its predecessor's grant
	// until its peers confirm it again, through a handshake that starts
	// with its first heartbeat.
	go f.sendHeartbeats(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C():
		case <-f.wake:
		case <-f.a.peers.Changed():
		}
		resetTimer(timer, f.pass(ctx))
	}
}

// pass decides for every FailoverIP that concerns this node, and returns
// when the next pass is due on time alone (ownership.NextPass).
func (f *failover) pass(ctx context.Context) time.Duration {
	snap, err := readSnapshot(ctx, f.a.cache, f.a.opts.NodeName)
	if err != nil {
		return failoverTick
	}
	if snap.self != nil {
		if ip, err := netip.ParseAddr(snap.self.Spec.Address); err == nil {
			f.a.vips.SetNodeIP(ip)
		}
	}
	if !f.removeLeftovers(ctx) {
		return failoverTick
	}
	f.settle(ctx, snap)
	if err := f.memory.giveUpUnknownPast(currentEpochs(snap)); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Saving the epochs given up at a start without memory; deciding nothing until saved")
		return failoverTick
	}
	if err := f.a.promises.withdrawUnknownPast(reportedUnheard(snap)); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Saving the withdrawals of a start without a record; deciding nothing until saved")
		return failoverTick
	}
	keepalive, deadtime := defaultKeepalive, time.Duration(0)
	needLease := false
	witnesses := map[string]witness.Target{}
	var reports []webfarmv1.NodeFailoverIPStatus
	var decisions []ownership.Decision
	for _, key := range f.concerned(snap) {
		fip := snap.failoverIPs[key]
		timing, _ := ownership.TimingOf(fip)
		keepalive = min(keepalive, timing.Keepalive)
		deadtime = max(deadtime, timing.Deadtime)
		r, ok, d := f.decide(ctx, key, fip)
		if ok {
			reports = append(reports, r)
		}
		decisions = append(decisions, d)
		needLease = needLease || d.NeedsLease || awaitsHandOff(fip, snap.node)
		if t, ok := f.witnessTarget(fip, d); ok {
			witnesses[key] = t
		}
	}
	f.a.witness.Set(witnesses)
	reports = f.acknowledge(snap, reports)
	if old := f.keepaliveNs.Swap(int64(keepalive)); int64(keepalive) < old {
		signal(f.shorterKeepalive)
	}
	f.setNeedLease(needLease)
	unheard := f.unheardFronts(snap, deadtime)
	f.a.reporter.update(func(r *report) { r.FailoverIPs, r.UnheardFronts = reports, unheard })
	// Written by the publisher: a status write may wait on the API
	// server, and decisions must not.
	f.a.publishSoon()
	return ownership.NextPass(failoverTick, decisions...)
}

// unheardFronts are the fronts this node sends heartbeats to and has not
// heard from for deadtime, the longest of its failover IPs'; none when it
// is concerned by none.
func (f *failover) unheardFronts(snap *snapshot, deadtime time.Duration) []string {
	if deadtime <= 0 {
		return nil
	}
	targets, _ := f.heartbeat(snap)
	return f.a.peers.Unheard(targets, f.startedAt, deadtime)
}

// awaitsHandOff tells whether node may be named owner of fip any moment by
// a planned hand-off: another owner was asked to release it, and node is a
// candidate. Such a node renews its Lease every keepalive until then. A new
// owner holds only once proved alive, and its peers confirm only a holder:
// the first proof is the Lease renewal the controller acknowledges when it
// names it, fresh only if the node renewed it shortly before, rather than
// once per QuietLeaseInterval; else the new owner renews it then and waits
// for one more round through the API server and the controller.
func awaitsHandOff(fip *webfarmv1.FailoverIP, node string) bool {
	st := fip.Status
	return st.ReleaseRequested && st.Owner != node && slices.Contains(st.Candidates, node)
}

// reportedUnheard is, per FailoverIP, its current epoch when this node's
// FrontNode reports its owner unheard at it: an earlier process withdrew
// from it, and the controller may act on that.
func reportedUnheard(snap *snapshot) map[string]int64 {
	epochs := map[string]int64{}
	if snap.self == nil {
		return epochs
	}
	for _, s := range snap.self.Status.FailoverIPs {
		fip := snap.failoverIPs[s.Name]
		if fip != nil && s.State == webfarmv1.VIPOwnerUnheard && s.UID == fip.UID && s.Epoch == fip.Status.Epoch {
			epochs[s.Name] = s.Epoch
		}
	}
	return epochs
}

// currentEpochs is the epoch of every FailoverIP.
func currentEpochs(snap *snapshot) map[string]int64 {
	epochs := make(map[string]int64, len(snap.failoverIPs))
	for key, fip := range snap.failoverIPs {
		epochs[key] = fip.Status.Epoch
	}
	return epochs
}

// concerned lists, sorted, the failover IPs this node owns, may own, vouches
// for, still holds, or serves as a front of a farm that lists them: such a
// front sends its heartbeats before it is a candidate, so that its peers
// hear it and the controller may make it one.
func (f *failover) concerned(snap *snapshot) []string {
	var keys []string
	for key, fip := range snap.failoverIPs {
		st := fip.Status
		if st.Owner == snap.node || slices.Contains(st.Candidates, snap.node) || slices.Contains(st.Voters, snap.node) ||
			f.memory.get(key).Holding || snap.frontOfFarmListing(fip) {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	return keys
}

// decide decides for one FailoverIP, carries the decision out and returns
// what to report, and the decision.
func (f *failover) decide(ctx context.Context, key string, fip *webfarmv1.FailoverIP) (webfarmv1.NodeFailoverIPStatus, bool, ownership.Decision) {
	now := f.a.clock.Now()
	mem := f.memory.get(key)
	timing, _ := ownership.TimingOf(fip)
	promised := f.a.promises.promised(key)
	in := ownership.Input{
		Node:         f.a.opts.NodeName,
		Address:      fip.Spec.Address,
		Status:       ownership.StatusOf(&fip.Status),
		Timing:       timing,
		Memory:       mem,
		LastAPIProof: f.lastAPIProof(key, fip, now, timing.Deadtime-timing.Guard),
		Peers:        f.a.peers.View(key),
		Promised:     promised,
		Withdrawn:    f.a.promises.withdrawnFrom(key),
		Started:      f.startedAt,
		Now:          now,
	}
	d := ownership.Decide(in)
	f.logChange(ctx, key, d, now)
	f.noteAwaiting(key, d, in.Status)
	if d.Action == ownership.Withdraw {
		r, ok := f.withdraw(ctx, key, fip, d, promised)
		f.remember(ctx, key, mem.After(d, now))
		return r, ok, d
	}
	r, ok := f.carryOut(ctx, key, fip, mem, d, now, releaseGrant(in, d))
	return r, ok, d
}

// noteAwaiting records whether d awaits a proof, for the heartbeats, and
// sends them at once when it starts to: the voters answer a claim at once,
// so the proof comes a round trip later rather than a keepalive.
func (f *failover) noteAwaiting(key string, d ownership.Decision, st ownership.Status) {
	claims := ownership.ClaimsForProof(d, st, f.a.opts.NodeName)
	f.awaitingMu.Lock()
	_, before := f.awaiting[key]
	if claims {
		if f.awaiting == nil {
			f.awaiting = map[string]ownership.Decision{}
		}
		f.awaiting[key] = d
	} else {
		delete(f.awaiting, key)
	}
	f.awaitingMu.Unlock()
	if claims && !before {
		signal(f.tookOver)
	}
}

// claimsForProof tells whether the heartbeats claim the address of key,
// owned at st, though this node does not hold it (noteAwaiting).
func (f *failover) claimsForProof(key string, st *webfarmv1.FailoverIPStatus) bool {
	f.awaitingMu.Lock()
	d, ok := f.awaiting[key]
	f.awaitingMu.Unlock()
	return ok && ownership.ClaimsForProof(d, ownership.Status{Owner: st.Owner, Epoch: st.Epoch}, f.a.opts.NodeName)
}

// releaseGrant is, for a planned release of an address this node holds,
// how long it may still answer for it: as long as it could hold it were
// no release requested, since the release changes nothing of what proves
// it alive; zero when that proof ran out, or for any other decision. The
// hand-off's wait for quiet renews the grant by it (vip.Manager.Extend):
// a grant left to run out from the last pass that held would let the gate
// drop the packets of an agent slowed down during the wait, before the
// removal passes them on.
func releaseGrant(in ownership.Input, d ownership.Decision) time.Duration {
	if d.Action != ownership.Release || !in.Memory.Holding {
		return 0
	}
	held := in
	held.Status.ReleaseRequested = false
	if hd := ownership.Decide(held); hd.Action == ownership.Hold {
		return hd.RecheckAfter
	}
	return 0
}

// logChange logs d when its action or epoch differs from the last
// decision for key, with how long the last one lasted: a Wait says what
// the new owner waits for, and the Hold after it how long it waited.
func (f *failover) logChange(ctx context.Context, key string, d ownership.Decision, now time.Time) {
	last, seen := f.decided[key]
	if seen && last.action == d.Action && last.epoch == d.Epoch {
		return
	}
	if f.decided == nil {
		f.decided = map[string]decided{}
	}
	f.decided[key] = decided{action: d.Action, epoch: d.Epoch, at: now}
	if !seen && d.Action == ownership.NotOwner {
		return
	}
	kv := []any{"failoverIP", key, "action", d.Action.String(), "epoch", d.Epoch, "reason", d.Reason}
	if seen {
		kv = append(kv, "after", last.action.String(), "for", now.Sub(last.at).String())
	}
	logr.FromContextOrDiscard(ctx).Info("Decided", kv...)
}

// withdraw saves that this node no longer vouches for the owner at d's
// epoch before reporting it, and renews the Lease at once: the controller
// may name this node next. A withdrawal that cannot be saved, or that a
// confirmation sent since the decision overtook, reports nothing.
func (f *failover) withdraw(ctx context.Context, key string, fip *webfarmv1.FailoverIP, d ownership.Decision, promised time.Time) (webfarmv1.NodeFailoverIPStatus, bool) {
	if f.a.promises.withdrawnFrom(key) < d.Epoch {
		if err := f.a.promises.withdraw(key, d.Epoch, promised); err != nil {
			logr.FromContextOrDiscard(ctx).V(1).Info("Not withdrawing yet", "failoverIP", key, "reason", err.Error())
			return webfarmv1.NodeFailoverIPStatus{}, false
		}
		logr.FromContextOrDiscard(ctx).Info("Withdrew from vouching for the owner", "failoverIP", key, "epoch", d.Epoch, "reason", d.Reason)
		f.a.lease.RenewNow()
	}
	state, _ := d.State()
	r := webfarmv1.NodeFailoverIPStatus{Name: key, Epoch: d.Epoch, State: state, Message: d.Reason, ObservedGeneration: timingGeneration(fip)}
	if d.UnheardAfter > 0 {
		r.UnheardAfter = &metav1.Duration{Duration: d.UnheardAfter}
	}
	return r, true
}

// carryOut holds, keeps waiting or removes the address as d says, and
// returns what to report; renew is how long a planned release may renew
// the address's grant (releaseGrant).
func (f *failover) carryOut(ctx context.Context, key string, fip *webfarmv1.FailoverIP, mem ownership.Memory, d ownership.Decision, now time.Time, renew time.Duration) (webfarmv1.NodeFailoverIPStatus, bool) {
	timing, generation := ownership.TimingOf(fip)
	addr, err := vipAddress(key, fip, d.Epoch)
	if err != nil {
		return webfarmv1.NodeFailoverIPStatus{Name: key, Epoch: d.Epoch, State: webfarmv1.VIPFenced, Reason: string(ownership.InvalidAddress),
			Message: err.Error(), ObservedGeneration: generation}, true
	}
	if d.Announce() {
		// Remembered before the address is added: from now on the
		// heartbeats claim it (ownership.Memory.After).
		f.remember(ctx, key, mem.After(d, now))
		if err := f.memory.proved(key, now.Add(d.RecheckAfter), timing.Deadtime-timing.Guard, proofSaveStep); err != nil {
			logr.FromContextOrDiscard(ctx).Error(err, "Saving the ownership memory", "failoverIP", key)
		}
		// The grant is the proof of liveness: the kernel stops answering
		// for the address when it runs out, unless a later pass renews it.
		if err := f.a.vips.EnsureUntil(ctx, addr, now.Add(d.RecheckAfter)); errors.Is(err, vip.ErrPromoting) {
			// Its master hook runs before the address is added (spec.hooks).
			return webfarmv1.NodeFailoverIPStatus{Name: key, Epoch: d.Epoch, State: webfarmv1.VIPWaiting, Message: err.Error(), ObservedGeneration: generation}, true
		} else if err != nil {
			logr.FromContextOrDiscard(ctx).Error(err, "Holding the failover address", "failoverIP", key)
			return webfarmv1.NodeFailoverIPStatus{Name: key, Epoch: d.Epoch, State: webfarmv1.VIPHolding, Message: err.Error(), ObservedGeneration: generation}, true
		}
		if !mem.Holding {
			signal(f.tookOver)
		}
	} else if mem.Holding {
		// The controller names the next owner only once this one reports
		// the address released: the release may wait for a quiet moment.
		addr.HandOff = d.Action == ownership.Release && fip.Status.ReleaseRequested && fip.Status.Owner == f.a.opts.NodeName
		addr.Fault = d.Action == ownership.Fence
		err := f.a.vips.Release(ctx, addr)
		if errors.Is(err, vip.ErrReleasing) {
			f.extendHandOff(ctx, addr, renew)
			// A hand-off waits for quiet, then the address goes and the
			// hook runs; released once both are done.
			return webfarmv1.NodeFailoverIPStatus{Name: key, Epoch: mem.HeldEpoch, State: webfarmv1.VIPHolding,
				Message: fmt.Sprintf("must stop holding (%s): releasing (connections in flight or release hook)", d)}, true
		}
		if err != nil {
			// Never acknowledge a release that did not happen.
			logr.FromContextOrDiscard(ctx).Error(err, "Removing the failover address", "failoverIP", key, "decision", d.String())
			return webfarmv1.NodeFailoverIPStatus{Name: key, Epoch: mem.HeldEpoch, State: webfarmv1.VIPHolding, ObservedGeneration: generation,
				Message: fmt.Sprintf("must stop holding (%s) but could not remove the address: %v", d, err)}, true
		}
		if err := f.remember(ctx, key, mem.After(d, now)); err != nil {
			return unsavedGiveUp(key, mem, d, err), true
		}
	} else if err := f.remember(ctx, key, mem.After(d, now)); err != nil && (d.Action == ownership.Release || d.Action == ownership.Fence) {
		return unsavedGiveUp(key, mem, d, err), true
	}
	state, ok := d.State()
	return webfarmv1.NodeFailoverIPStatus{Name: key, Epoch: d.Epoch, State: state, Reason: string(d.Cause), Message: d.Reason, ObservedGeneration: generation}, ok
}

// extendHandOff renews for grant the address of a planned hand-off still
// waiting for quiet (releaseGrant).
func (f *failover) extendHandOff(ctx context.Context, addr vip.Address, grant time.Duration) {
	if grant <= 0 || !addr.HandOff {
		return
	}
	if err := f.a.vips.Extend(addr, grant); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Renewing the grant of a failover address handed off", "failoverIP", addr.FailoverIP)
	}
}

// witnessTarget tells whether this node must prove itself the live owner
// of fip through the API server, after deciding d: it owns fip, its peers
// do not vouch for it with a keepalive to spare (d.NeedsLease), and the
// controller counts witnesses (status.ownerWitnessCounted).
func (f *failover) witnessTarget(fip *webfarmv1.FailoverIP, d ownership.Decision) (witness.Target, bool) {
	st := fip.Status
	if !d.NeedsLease || !st.OwnerWitnessCounted || st.Owner != f.a.opts.NodeName || st.Epoch <= 0 || d.Epoch != st.Epoch {
		return witness.Target{}, false
	}
	timing, _ := ownership.TimingOf(fip)
	return witness.Target{Name: client.ObjectKeyFromObject(fip), UID: fip.UID, Epoch: st.Epoch, Every: timing.Keepalive}, true
}

// lastAPIProof is when this node's last proof of liveness through the API
// server started: its last witness of fip (witness.Witness), or the renewal
// of its Lease that fip's status acknowledges, if this process made them,
// or, right after a restart, the equivalent of the proof the previous
// process had for key: a proof that lasts window, until the time it saved.
// A renewal the controller has not acknowledged proves nothing: it may have
// moved the address without seeing it. Under a status from an older
// controller (no voters, no acknowledgements), the last renewal counts, as
// it did.
func (f *failover) lastAPIProof(key string, fip *webfarmv1.FailoverIP, now time.Time, window time.Duration) time.Time {
	last := f.a.lease.Started(fip.Status.OwnerRenewal)
	if len(fip.Status.Voters) == 0 {
		last = f.a.lease.LastRenewal()
	}
	if w := f.a.witness.Since(key, fip.UID, fip.Status.Epoch); fip.Status.OwnerWitnessCounted && w.After(last) {
		last = w
	}
	if until := f.memory.restoredProof(key, now, window); !until.IsZero() && until.Add(-window).After(last) {
		return until.Add(-window)
	}
	return last
}

func (f *failover) remember(ctx context.Context, key string, m ownership.Memory) error {
	err := f.memory.set(key, m)
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Saving the ownership memory", "failoverIP", key)
	}
	return err
}

// timingGeneration is the generation of the timing the agent acts on for
// fip: what its reports give as observedGeneration, which tells the
// controller when an owner stopped using older timings.
func timingGeneration(fip *webfarmv1.FailoverIP) int64 {
	_, generation := ownership.TimingOf(fip)
	return generation
}

// unsavedGiveUp is the report of a release or fence d that could not be
// saved: not Released or Fenced, which the controller hands the address over
// on, since a restart would not know it gave that epoch up. The next pass
// tries again.
func unsavedGiveUp(key string, mem ownership.Memory, d ownership.Decision, err error) webfarmv1.NodeFailoverIPStatus {
	msg := fmt.Sprintf("%s, but could not save it: %v", d, err)
	if mem.Holding {
		return webfarmv1.NodeFailoverIPStatus{Name: key, Epoch: mem.HeldEpoch, State: webfarmv1.VIPHolding, Message: msg}
	}
	return webfarmv1.NodeFailoverIPStatus{Name: key, Epoch: d.Epoch, State: webfarmv1.VIPWaiting, Message: msg}
}

func vipAddress(key string, fip *webfarmv1.FailoverIP, epoch int64) (vip.Address, error) {
	ip, err := netip.ParseAddr(fip.Spec.Address)
	if err != nil {
		return vip.Address{}, fmt.Errorf("spec.address %q: %w", fip.Spec.Address, err)
	}
	return vip.Address{IP: ip, Interface: fip.Spec.Interface, FailoverIP: key, Epoch: epoch, Notify: notifyOf(fip), PreviousOwner: fip.Status.PreviousOwner,
		LastOwner: fip.Status.LastOwner, LastOwnerEpoch: fip.Status.LastOwnerEpoch}, nil
}

// sendHeartbeats tells every front that may hold one of the failover IPs
// this node may hold, every keepalive, which of them it holds and what it
// sees, and at once when it takes an address over. A node that holds no
// address also answers at once a heartbeat that
// claims one, so that the holder's proof is as old as the round trip rather
// than up to a keepalive older (the holder then needs its Lease only when a
// confirmation is really late); its next heartbeats go a keepalive and a
// half later, unless the holder's next comes first. Holders do not answer
// each other, so that two of them never echo each other's echoes.
func (f *failover) sendHeartbeats(ctx context.Context) {
	timer := f.a.clock.NewTimer(0)
	defer timer.Stop()
	var last time.Time
	for {
		echo := false
		select {
		case <-ctx.Done():
			return
		case <-timer.C():
		case <-f.a.peers.HolderHeard():
			echo = true
		case <-f.tookOver:
		case <-f.a.peers.Answered():
			// A peer has just taken this boot, without the claims of the
			// heartbeat it challenged: they go now, not a keepalive later
			// (a restarted owner's voters would count it unheard).
		case <-f.a.peers.Keyed():
		case <-f.shorterKeepalive:
			resetTimer(timer, max(0, f.keepalive()-f.a.clock.Since(last)))
			continue
		}
		k := f.keepalive()
		next := k
		if echo {
			since := f.a.clock.Since(last)
			if since < k/echoFloor {
				// Just sent, before the claim came: answer it once the
				// floor has passed. Waiting for the claimant's next
				// heartbeat instead cost a new owner's first confirmation
				// a keepalive, and this voter's withdrawal could come
				// first.
				resetTimer(timer, k/echoFloor-since)
				continue
			}
			next = k * 3 / 2
		}
		switch f.beat(ctx, echo) {
		case beatSent:
			last = f.a.clock.Now()
			resetTimer(timer, next)
		case beatNone:
			if !echo {
				resetTimer(timer, k)
			}
		}
	}
}

// echoFloor: a node answers no claimant within keepalive/echoFloor of its
// last heartbeats.
const echoFloor = 8

// beatOutcome is what one round of heartbeats did.
type beatOutcome int

const (
	beatSent beatOutcome = iota
	// beatNone: nothing to send, or the node holds an address and the
	// round only answered another holder.
	beatNone
)

// beat sends one round of heartbeats; as an echo of a holder's, only from
// a node that holds no address.
func (f *failover) beat(ctx context.Context, echo bool) beatOutcome {
	snap, err := readSnapshot(ctx, f.a.cache, f.a.opts.NodeName)
	if err != nil {
		return beatNone
	}
	f.a.peers.SetMembership(membership(snap, uint16(f.a.opts.PeerPort)))
	targets, claims := f.heartbeat(snap)
	if len(targets) == 0 || (echo && slices.ContainsFunc(claims, func(c heartbeat.Claim) bool { return c.Holding })) {
		return beatNone
	}
	if err := f.a.peers.Send(targets, claims); err != nil {
		logr.FromContextOrDiscard(ctx).V(1).Info("Sending peer heartbeats", "error", err.Error())
	}
	return beatSent
}

// resetTimer stops t and starts it again for d.
func resetTimer(t clock.Timer, d time.Duration) {
	t.Stop()
	t.Reset(d)
}

// membership is who the peer heartbeats come from and go to: every front,
// at its node address, and every failover IP.
func membership(snap *snapshot, port uint16) heartbeat.Membership {
	m := heartbeat.Membership{Fronts: map[string]netip.AddrPort{}}
	for name, front := range snap.fronts {
		if ip, err := netip.ParseAddr(front.Spec.Address); err == nil && name != snap.node {
			m.Fronts[name] = netip.AddrPortFrom(ip, port)
		}
	}
	for key := range snap.failoverIPs {
		m.FailoverIPs = append(m.FailoverIPs, key)
	}
	return m
}

// heartbeat returns to which nodes this node's heartbeat goes, and what it
// says. It goes to every front that may hold an address this node may hold:
// the owner, the previous owner, every candidate, and every front of the
// farms that list the FailoverIP (every node a standalone one selects). A stale owner that is no longer a
// candidate must hear a new owner's later epoch, and drop the address.
func (f *failover) heartbeat(snap *snapshot) ([]string, []heartbeat.Claim) {
	var targets []string
	var claims []heartbeat.Claim
	for _, key := range f.concerned(snap) {
		fip := snap.failoverIPs[key]
		st := fip.Status
		claims = append(claims, heartbeat.Claim{
			FailoverIP: key, Holding: f.memory.get(key).Holding || f.claimsForProof(key, &st), SeenOwner: st.Owner, SeenEpoch: st.Epoch,
			Withdrawn: st.Owner != snap.node && f.a.promises.withdrawnFrom(key) >= st.Epoch,
		})
		targets = append(targets, st.Owner, st.PreviousOwner)
		targets = append(targets, st.Candidates...)
		targets = append(targets, snap.peersOf(fip)...)
	}
	targets = slices.DeleteFunc(targets, func(name string) bool { return name == "" || name == snap.node || snap.fronts[name] == nil })
	slices.Sort(targets)
	return slices.Compact(targets), claims
}

// holdsAny tells whether this node still holds or owns any failover address.
func (f *failover) holdsAny(snap *snapshot) bool {
	for key, fip := range snap.failoverIPs {
		if fip.Status.Owner == snap.node || f.memory.get(key).Holding {
			return true
		}
	}
	return false
}

// releaseWaiting releases addr and waits for its release hook, until ctx
// is done.
func (f *failover) releaseWaiting(ctx context.Context, addr vip.Address) error {
	for {
		err := f.a.vips.Release(ctx, addr)
		if !errors.Is(err, vip.ErrReleasing) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-f.a.clock.After(failoverTick):
		}
	}
}

// releaseAll removes every address this node holds, whoever owns it and
// whether or not its FailoverIP still exists: the last step of a graceful
// shutdown.
func (f *failover) releaseAll(ctx context.Context, snap *snapshot) {
	for _, held := range f.memory.held() {
		addr, err := heldAddressOf(held)
		if fip := snap.failoverIPs[held.key]; held.object.Address == "" && fip != nil {
			addr, err = vipAddress(held.key, fip, held.memory.HeldEpoch)
		}
		if err == nil {
			err = f.releaseWaiting(ctx, addr)
		}
		if err != nil {
			logr.FromContextOrDiscard(ctx).Error(err, "Removing the failover address at shutdown", "failoverIP", held.key)
			continue
		}
		d := ownership.Decision{Action: ownership.Release, Epoch: held.memory.HeldEpoch, Reason: "agent shut down"}
		f.remember(ctx, held.key, held.memory.After(d, f.a.clock.Now()))
	}
}
