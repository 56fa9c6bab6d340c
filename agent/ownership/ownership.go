// Package ownership decides what an agent does with one FailoverIP: hold and
// announce the address, wait, release it, or fence itself.
//
// Decide is a pure function of what the agent knows — the FailoverIP status it
// last saw, its own memory of the address, when it last renewed its Lease,
// what it last heard from its peers — and of now. It has no clock, client or
// goroutine, so every rule below is a row of a table test.
//
// Rules (docs/architecture.md, "Failover-IP ownership"):
//
//   - A node holds the address only as the owner of the current epoch, and
//     only while it can prove it is alive: its Lease was renewed within
//     deadtime-guard, or enough other voters of the epoch (with this node,
//     more than half of them and the API server: quorum.go) confirmed its
//     ownership, not claiming the address, in reports echoing a heartbeat
//     this node sent within deadtime-guard (counted from the sending, not
//     the arrival).
//     Without voters (a status from an older controller), the candidates
//     stand for them.
//   - A node with no other voter can prove it only through its Lease.
//   - A voter that has not confirmed the owner for deadtime, and has known
//     the epoch that long, withdraws: it never confirms that owner at that
//     epoch again, and reports the owner unheard, which lets the controller
//     move the address without waiting for the owner's Lease.
//   - When a peer heard within deadtime reports a later epoch, or another
//     owner of the current epoch, the node's view is stale: it drops the
//     address at once.
//   - A node that confirmed another's ownership promised not to announce the
//     address for deadtime-guard after the heartbeat it confirmed arrived.
//   - A new owner announces once the previous owner acknowledged its release
//     (previousOwnerReleased), or else once its promise expired and no peer
//     claimed the address for deadtime; a new owner that never heard the
//     previous owner listens for deadtime from the moment it learns its
//     epoch.
//   - A node never holds again at an epoch it released or fenced: the
//     controller has to write a new epoch first.
//
// Times are compared only with one another when they come from this node's
// own monotonic clock (time.Now readings); no other machine's timestamp is
// ever used.
package ownership

import (
	"fmt"
	"slices"
	"time"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// Action is what the agent does with the address.
type Action int

const (
	// NotOwner: another node owns the address, or none does; make sure it is
	// not on this node. Nothing to report.
	NotOwner Action = iota
	// Hold: add the address and announce it.
	Hold
	// Wait: this node owns the address but may not announce it yet.
	Wait
	// Release: remove the address and report it released at the epoch.
	Release
	// Fence: remove the address at once and report why.
	Fence
	// Withdraw: another node owns the address, and this voter has not
	// confirmed it for deadtime: record that it never confirms that owner
	// at this epoch again, then report the owner unheard.
	Withdraw
)

func (a Action) String() string {
	switch a {
	case NotOwner:
		return "NotOwner"
	case Hold:
		return "Hold"
	case Wait:
		return "Wait"
	case Release:
		return "Release"
	case Fence:
		return "Fence"
	case Withdraw:
		return "Withdraw"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Status is the part of a FailoverIP's status that fences ownership, as this
// node last saw it.
type Status struct {
	Owner                 string
	Epoch                 int64
	PreviousOwner         string
	PreviousOwnerReleased bool
	ReleaseRequested      bool
	// Candidates are the nodes that may hold the address.
	Candidates []string
	// Voters vouch for the owner at this epoch: it must hear every one of
	// them but itself to serve without its Lease. Empty in a status from an
	// older controller: the candidates stand for them.
	Voters []string
	// FencingDeadtime is the longest deadtime an earlier holder may still be
	// using (status.fencingTiming): after the spec's deadtime was cut, the
	// previous owner may hold by its peers for the old one, so a new owner
	// listens for it that long. Zero when the status has none.
	FencingDeadtime time.Duration
}

// StatusOf reads the fencing fields of a FailoverIP status.
func StatusOf(s *webfarmv1.FailoverIPStatus) Status {
	return Status{
		Owner:                 s.Owner,
		Epoch:                 s.Epoch,
		PreviousOwner:         s.PreviousOwner,
		PreviousOwnerReleased: s.PreviousOwnerReleased,
		ReleaseRequested:      s.ReleaseRequested,
		Candidates:            slices.Clone(s.Candidates),
		Voters:                slices.Clone(s.Voters),
		FencingDeadtime:       fencingDeadtime(s.FencingTiming),
	}
}

func fencingDeadtime(t *webfarmv1.FencingTiming) time.Duration {
	if t == nil {
		return 0
	}
	return t.Deadtime.Duration
}

// Timing holds the Heartbeat timings of a FailoverIP.
type Timing struct {
	Keepalive time.Duration
	Deadtime  time.Duration
	Guard     time.Duration
}

// TimingOf returns the timing to act on for fip, and the generation of the
// spec it comes from: the one the controller wrote into the status, or,
// under an older controller that writes none, the spec's own. Acting only
// on timings the controller managed to write lets it know every value an
// owner may be using.
func TimingOf(fip *webfarmv1.FailoverIP) (Timing, int64) {
	if t := fip.Status.Timing; t != nil {
		return Timing{Keepalive: t.Keepalive.Duration, Deadtime: t.Deadtime.Duration, Guard: t.Guard.Duration}, t.Generation
	}
	s := &fip.Spec
	return Timing{Keepalive: s.Keepalive.Duration, Deadtime: s.Deadtime.Duration, Guard: s.Guard.Duration}, fip.Generation
}

// aliveWindow is how long a proof of liveness lasts: an owner that has proved
// nothing for deadtime-guard removes the address, guard before the controller
// may give it to another node (deadtime+guard).
func (t Timing) aliveWindow() time.Duration { return t.Deadtime - t.Guard }

// Peer is what this node heard from another agent, by its own clock.
type Peer struct {
	Node string
	// LastHeard is when the last authenticated heartbeat arrived; zero if
	// never.
	LastHeard time.Time
	// LastClaimed is when the last heartbeat saying the peer holds this
	// address arrived; zero if never.
	LastClaimed time.Time
	// SeenOwner and SeenEpoch are the latest ownership of this FailoverIP
	// the peer reported seeing in its status; SeenEpoch 0 when it reported
	// none.
	SeenOwner string
	SeenEpoch int64
	// Confirmed is when this node sent the heartbeat whose token the peer
	// echoed in its latest report of this FailoverIP; zero if that report
	// echoed none. The report was made after Confirmed, so it proves
	// something about the peer from Confirmed on, however long it took to
	// arrive.
	Confirmed time.Time
	// Withdrawn: the peer's latest report says it no longer vouches for
	// the owner of SeenEpoch (Withdraw).
	Withdrawn bool
}

// Input is everything Decide looks at.
type Input struct {
	// Node is this node's name.
	Node string
	// Address is the floating address, used in reasons only.
	Address string
	Status  Status
	Timing  Timing
	// Memory is what this node remembers of the address from its previous
	// decisions (see Memory.After).
	Memory Memory
	// LastAPIProof is when this node's latest proof of liveness through
	// the API server started: a Lease renewal the status acknowledges, or
	// a witness that landed (agent/witness); zero if none did yet.
	LastAPIProof time.Time
	// Peers are the agents this node heard from, and may include agents
	// that are not candidates; a candidate missing here was never heard.
	Peers []Peer
	// Promised is the latest arrival time of another node's token that this
	// node echoed while confirming that node's ownership of the address: it
	// promised not to announce the address before Promised plus
	// deadtime-guard, unless the previous owner released it. After a
	// restart that lost the record, the agent's start. Zero if none.
	Promised time.Time
	// Started is when this agent process started: it confirms nothing
	// before its peer handshakes complete, up to two keepalives later, so
	// it withdraws from no epoch before deadtime after that. Zero: no
	// allowance.
	Started time.Time
	// Withdrawn is the latest epoch at which this node withdrew its
	// confirmation of the owner (Withdraw), as saved; 0 if none.
	Withdrawn int64
	Now       time.Time
}

// Decision is what to do with the address now.
type Decision struct {
	Action Action
	// Epoch is the epoch the action refers to, for the FrontNode status.
	Epoch int64
	// Reason says what a Wait waits for, why a Fence fenced, who owns the
	// address instead; human-readable.
	Reason string
	// Cause is, for a Fence, why in one word; empty for other actions.
	Cause FenceCause
	// RecheckAfter is the longest the agent may go before deciding again
	// when nothing it knows changes: for Hold, when the proof of liveness
	// runs out; for Wait, when the wait may be over; for NotOwner, when
	// this node may have to withdraw.
	RecheckAfter time.Duration
	// NeedsLease: this node owns the address and its peers do not vouch
	// for it with a keepalive to spare, or it withdrew and may be named
	// next (likelySuccessor), so it must renew its Lease every keepalive
	// rather than every QuietLeaseInterval.
	NeedsLease bool
	// UnheardAfter is, for Withdraw, the deadtime this node has gone
	// without confirming the owner, to report; zero while it has not gone
	// the current one (a deadtime raised after it withdrew).
	UnheardAfter time.Duration
	// AwaitsProof: a Wait of an owner that lacks only a proof of liveness.
	// It claims the address in its heartbeats meanwhile, as a holder does
	// (ClaimsForProof): voters confirm only a claimant, and their
	// confirmations are the proof it waits for.
	AwaitsProof bool
}

// FenceCause says in one CamelCase word why a node fenced: the reason its
// FrontNode reports and the label the fences metric counts by.
type FenceCause string

const (
	// ProofExpired: neither its peers nor an acknowledged Lease renewal
	// prove the owner alive any more.
	ProofExpired FenceCause = "ProofExpired"
	// NewerView: a peer reports a later epoch, or another owner.
	NewerView FenceCause = "NewerView"
	// StatusRolledBack: the status names an epoch older than the one held.
	StatusRolledBack FenceCause = "StatusRolledBack"
	// Superseded: another owner may have held the address since the epoch
	// this node holds.
	Superseded FenceCause = "Superseded"
	// InvalidAddress: the address or interface of the FailoverIP cannot
	// be held (reported by the agent, not decided here).
	InvalidAddress FenceCause = "InvalidAddress"
	// Unrecorded: a fence saved by an agent that did not record causes.
	Unrecorded FenceCause = "Unrecorded"
)

// Announce tells whether the address must be on this node and announced.
func (d Decision) Announce() bool { return d.Action == Hold }

// State is what the agent reports in FrontNode.status.failoverIPs; false for
// NotOwner, which reports nothing.
func (d Decision) State() (webfarmv1.VIPState, bool) {
	switch d.Action {
	case Hold:
		return webfarmv1.VIPHolding, true
	case Wait:
		return webfarmv1.VIPWaiting, true
	case Release:
		return webfarmv1.VIPReleased, true
	case Fence:
		return webfarmv1.VIPFenced, true
	case Withdraw:
		return webfarmv1.VIPOwnerUnheard, true
	}
	return "", false
}

func (d Decision) String() string {
	if d.Reason == "" {
		return fmt.Sprintf("%s at epoch %d", d.Action, d.Epoch)
	}
	return fmt.Sprintf("%s at epoch %d: %s", d.Action, d.Epoch, d.Reason)
}

// Decide returns what this node does with the address now.
func Decide(in Input) Decision {
	st := in.Status
	switch {
	case st.Owner != in.Node:
		return notOwner(in)
	case st.ReleaseRequested:
		return Decision{Action: Release, Epoch: st.Epoch, Reason: "released for a planned hand-off", RecheckAfter: in.Timing.Keepalive}
	case st.Epoch <= 0:
		return in.wait("epoch 0 fences nothing: waiting for the controller to write an epoch", in.Timing.Keepalive)
	}
	if why, stale := newerView(in); stale {
		return in.dropOrWait(NewerView, why)
	}
	if m := in.Memory; m.GaveUp != NotOwner && m.GaveUpEpoch >= st.Epoch {
		reason := fmt.Sprintf("%s; holding again needs a new epoch", m.GaveUpReason)
		return Decision{Action: m.GaveUp, Epoch: m.GaveUpEpoch, Reason: reason, Cause: m.GaveUpCause, RecheckAfter: in.Timing.Keepalive}
	}
	holding, fence := in.heldEpoch()
	if fence != nil {
		return *fence
	}
	until, why, alive := in.proveAlive()
	if !alive {
		d := in.needingLease(in.dropOrWait(ProofExpired, why))
		d.AwaitsProof = d.Action == Wait && in.mayClaimForProof()
		return d
	}
	if holding {
		return in.hold(until)
	}
	if left, why := in.pending(); left > 0 {
		return in.needingLease(in.wait(why, left))
	}
	if left := until.Sub(in.Now); left < in.Timing.Keepalive && in.mayClaimForProof() {
		return in.awaitFresherProof(left)
	}
	return in.hold(until)
}

// awaitFresherProof is the Wait of an owner about to announce on a proof
// that runs out in left, less than a keepalive: holding on it, new owners
// fenced themselves 10–50 ms in, before a voter's first confirmation came
// (the last renewal of a Lease renewed every keepalive on a loaded
// machine, or a voter still on the previous epoch), and the address went
// round the controller again. It claims the address instead, and holds on
// its voters' confirmations a round trip later, or on a fresher renewal.
func (in Input) awaitFresherProof(left time.Duration) Decision {
	why := fmt.Sprintf("its proof of liveness lasts %s more, less than a keepalive: claiming %s to be confirmed first", short(left), in.Address)
	d := in.needingLease(in.wait(why, left))
	d.AwaitsProof = true
	return d
}

// mayClaimForProof tells whether an owner that is not proved alive, and
// does not hold the address, may claim it in its heartbeats so that its
// voters confirm it: nothing but the proof keeps it from announcing, and it
// has not waited at this epoch for two listening deadtimes yet.
//
// Without the claim, the first proof of a new owner (or of one renewed
// after it fenced) had to be an acknowledged Lease renewal. On a loaded
// machine that came after the voters, hearing no claim for a deadtime, had
// withdrawn from the epoch for good; the owner then held on its Lease
// alone, fenced at its first late renewal, and the next epoch went the
// same way. A claim only makes others more careful: a later owner waits
// for it to stop (pending), and a voter that claims confirms nobody.
//
// The bound keeps a way out: an owner that cannot prove itself (one voter
// dead, and its Lease renewals failing) stops claiming, its voters then
// withdraw, and the controller moves the address, a deadtime or so later
// than without the claim.
func (in Input) mayClaimForProof() bool {
	if left, _ := in.pending(); left > 0 {
		return false
	}
	m := in.Memory
	return m.WaitingEpoch != in.Status.Epoch || m.WaitingSince.IsZero() || in.Now.Sub(m.WaitingSince) < 2*in.listenDeadtime()
}

// ClaimsForProof tells whether this node, deciding d under status st, must
// claim the address in its heartbeats though it does not hold it: d awaits
// a proof (AwaitsProof), and st still names this node the owner at d's
// epoch, so that a claim never outlives the ownership it was made for.
func ClaimsForProof(d Decision, st Status, node string) bool {
	return d.AwaitsProof && d.Action == Wait && st.Owner == node && st.Epoch == d.Epoch
}

// needingLease marks d as needing the Lease unless the peers vouch for this
// node with a keepalive to spare.
func (in Input) needingLease(d Decision) Decision {
	d.NeedsLease = in.needsLease()
	return d
}

// needsLease tells whether this owner must renew its Lease every keepalive:
// its peers do not vouch for it with a keepalive to spare, or some
// candidate is no voter — the controller renews the epoch with every
// candidate as a voter once it sees the owner's Lease fresh, so that a
// front that joined can vouch, and testify, too.
func (in Input) needsLease() bool {
	return !in.vouchedWithSpare() || in.votersBehind()
}

// votersBehind tells whether a candidate of the status is no voter of its
// epoch.
func (in Input) votersBehind() bool {
	st := in.Status
	return len(st.Voters) > 0 && slices.ContainsFunc(st.Candidates, func(c string) bool { return !slices.Contains(st.Voters, c) })
}

func notOwner(in Input) Decision {
	st := in.Status
	d := Decision{Action: NotOwner, Epoch: st.Epoch, RecheckAfter: in.Timing.Keepalive,
		Reason: fmt.Sprintf("%s owns %s at epoch %d", st.Owner, in.Address, st.Epoch)}
	if st.Owner == "" {
		d.Reason = fmt.Sprintf("no node owns %s at epoch %d", in.Address, st.Epoch)
		if !in.vouchedForWithdrawn() {
			return d
		}
	}
	left, voter := in.untilWithdrawal()
	switch {
	case !voter:
		return d
	case left <= 0 || in.Withdrawn >= st.Epoch:
		return in.withdrawal(left)
	}
	d.RecheckAfter = min(left, in.Timing.Keepalive)
	return d
}

// vouchedForWithdrawn tells whether this node, not holding the address,
// may have vouched for an owner the controller took the address from
// without a successor (the FailoverIP deleted, or in conflict): the status
// keeps that owner's voters, and the controller lets the object go, or the
// address be given again, once one of them withdraws at this epoch, or the
// owner says it removed the address.
func (in Input) vouchedForWithdrawn() bool {
	st := in.Status
	return st.PreviousOwner != "" && !st.PreviousOwnerReleased && st.PreviousOwner != in.Node && !in.Memory.Holding
}

// withdrawal is the Withdraw of a voter that must withdraw, or did: it
// reports the deadtime it waited once it has waited the current one
// (left is how much longer it has to).
func (in Input) withdrawal(left time.Duration) Decision {
	st := in.Status
	d := Decision{Action: Withdraw, Epoch: st.Epoch, RecheckAfter: in.Timing.Keepalive,
		Reason: fmt.Sprintf("has not heard %s, owner of %s at epoch %d, for %s", st.Owner, in.Address, st.Epoch, short(in.listenDeadtime()))}
	if st.Owner == "" {
		d.Reason = fmt.Sprintf("has vouched for nobody for %s since %s lost %s without a successor, at epoch %d", short(in.listenDeadtime()), st.PreviousOwner, in.Address, st.Epoch)
	}
	if left <= 0 {
		d.UnheardAfter = in.listenDeadtime()
		d.NeedsLease = in.likelySuccessor(-left)
	} else {
		d.RecheckAfter = min(left, in.Timing.Keepalive)
	}
	return d
}

// likelySuccessor tells whether this voter, which withdrew since ago, may
// be named the next owner soon: it is a candidate, and the controller,
// which moves the address once the owner's Lease is silent for deadtime
// plus guard as well, would have done so by now. Until then it renews its
// Lease every keepalive, so that the status naming it acknowledges a fresh
// renewal: its voters confirm only a holder, so that renewal is its first
// proof, and a stale one would cost another round through the API server
// before it holds, while its voters, hearing no claim, withdraw from it.
func (in Input) likelySuccessor(ago time.Duration) bool {
	return slices.Contains(in.Status.Candidates, in.Node) &&
		ago < in.listenDeadtime()+in.Timing.Guard+2*in.Timing.Keepalive
}

// handshakeAllowance is how many keepalives a started agent may take to
// complete its peer handshakes (a challenge and its answer) before it can
// confirm anything.
const handshakeAllowance = 2

// untilWithdrawal tells whether this node is another node's voter at the
// current epoch and, if so, how long until it may withdraw, or report a
// withdrawal already made: once it has confirmed nothing for deadtime (its
// promises then ran out guard ago, and so did every proof they gave the
// owner) and has known the epoch that long.
func (in Input) untilWithdrawal() (time.Duration, bool) {
	st := in.Status
	if st.Epoch <= 0 || !slices.Contains(st.Voters, in.Node) {
		return 0, false
	}
	deadtime := in.listenDeadtime()
	left := in.Promised.Add(deadtime).Sub(in.Now)
	if m := in.Memory; m.ViewEpoch == st.Epoch && !m.ViewSince.IsZero() {
		left = max(left, m.ViewSince.Add(deadtime).Sub(in.Now))
	} else {
		left = max(left, deadtime)
	}
	if !in.Started.IsZero() {
		left = max(left, in.Started.Add(handshakeAllowance*in.Timing.Keepalive+deadtime).Sub(in.Now))
	}
	return left, true
}

func (in Input) hold(until time.Time) Decision {
	return Decision{Action: Hold, Epoch: in.Status.Epoch, RecheckAfter: until.Sub(in.Now), NeedsLease: in.needsLease()}
}

func (in Input) wait(why string, recheck time.Duration) Decision {
	return Decision{Action: Wait, Epoch: in.Status.Epoch, Reason: why, RecheckAfter: recheck}
}

// dropOrWait fences a node that holds the address and keeps one that does not
// from announcing it.
func (in Input) dropOrWait(cause FenceCause, why string) Decision {
	if in.Memory.Holding {
		return Decision{Action: Fence, Epoch: in.Memory.HeldEpoch, Reason: why, Cause: cause, RecheckAfter: in.Timing.Keepalive}
	}
	return in.wait(why, in.Timing.Keepalive)
}

// newerView tells whether a peer reported a later epoch, or another owner of
// the current one: proof that this node's status is stale. A report counts
// only while its sender is heard about the address within deadtime, so that
// a forged or replayed value, or one from a departed node, changes nothing
// lasting; the rules that keep the invariant do not depend on it (a peer that
// saw another view never confirms this node's ownership).
func newerView(in Input) (string, bool) {
	st := in.Status
	for _, p := range in.Peers {
		if in.Now.Sub(p.LastHeard) >= in.Timing.Deadtime {
			continue
		}
		if p.SeenEpoch > st.Epoch || (p.SeenEpoch == st.Epoch && p.SeenOwner != st.Owner) {
			return fmt.Sprintf("%s reports epoch %d owned by %s, our status says epoch %d owned by %s",
				p.Node, p.SeenEpoch, orNone(p.SeenOwner), st.Epoch, st.Owner), true
		}
	}
	return "", false
}

// heldEpoch tells whether the address this node holds may stay on it at the
// current epoch, or returns the Fence that removes it.
func (in Input) heldEpoch() (bool, *Decision) {
	m, st := in.Memory, in.Status
	switch {
	case !m.Holding:
		return false, nil
	case m.HeldEpoch == st.Epoch:
		return true, nil
	case m.HeldEpoch == st.Epoch-1:
		// The controller renewed our own ownership (the status names this
		// node owner here): nobody else held an epoch in between. It may
		// carry the previous owner over (renewing an owner it did not see
		// holding yet), which the wait before holding was about.
		return true, nil
	case m.HeldEpoch > st.Epoch:
		return false, &Decision{Action: Fence, Epoch: m.HeldEpoch, Cause: StatusRolledBack, RecheckAfter: in.Timing.Keepalive,
			Reason: fmt.Sprintf("status epoch %d is older than epoch %d that we hold", st.Epoch, m.HeldEpoch)}
	}
	return false, &Decision{Action: Fence, Epoch: m.HeldEpoch, Cause: Superseded, RecheckAfter: in.Timing.Keepalive,
		Reason: fmt.Sprintf("held at epoch %d, but another owner may have held it before epoch %d", m.HeldEpoch, st.Epoch)}
}

// proveAlive tells until when this node is provably alive: through its Lease,
// or through a quorum of its other voters confirming that none of them
// claims the address. When it is not, it says why.
func (in Input) proveAlive() (time.Time, string, bool) {
	window := in.Timing.aliveWindow()
	var until time.Time
	leaseWhy := "has no proof through the API server yet"
	if !in.LastAPIProof.IsZero() {
		until = in.LastAPIProof.Add(window)
		leaseWhy = fmt.Sprintf("has had no proof through the API server for %s", short(in.Now.Sub(in.LastAPIProof)))
	}
	peersUntil, peersWhy, confirmed := in.confirmedByPeers(window)
	if confirmed && peersUntil.After(until) {
		until = peersUntil
	}
	if in.Now.Before(until) {
		return until, "", true
	}
	return time.Time{}, fmt.Sprintf("%s and %s", leaseWhy, peersWhy), false
}

// confirmedByPeers tells until when enough other voters confirm that no
// other node holds the address (ConfirmationsNeeded: with this node, more
// than half of the voters and the API server; see quorum.go): each one's
// latest report says it sees this node's ownership at the current epoch and
// does not claim the address, and echoes a heartbeat this node sent less
// than window ago. A proof runs from when this node sent that heartbeat,
// not from when the report arrived, so a delayed report can only shorten
// it; and the peer promised, by sending it, not to announce the address
// before the proof runs out (Input.Promised). The quorum's proof lasts
// while that many confirmations do.
func (in Input) confirmedByPeers(window time.Duration) (time.Time, string, bool) {
	c := in.peerConfirmations(window)
	need := ConfirmationsNeeded(c.voters)
	if c.voters == 0 {
		return time.Time{}, "has no other voter to confirm it", false
	}
	if len(c.until) < need {
		return time.Time{}, fmt.Sprintf("%s (%d of %d other voters confirm it, %d needed)", c.firstWhyNot, len(c.until), c.voters, need), false
	}
	return c.until[need-1], "", true
}

// confirmations are the other voters' confirmations of this node.
type confirmations struct {
	// voters is how many other voters the epoch has.
	voters int
	// until are the ends of the proofs the confirming ones give, latest
	// first.
	until []time.Time
	// firstWhyNot says why the first voter that does not confirm does not.
	firstWhyNot string
}

func (in Input) peerConfirmations(window time.Duration) confirmations {
	others := in.otherVoters()
	c := confirmations{voters: len(others)}
	for _, name := range others {
		p, heard := in.peer(name)
		if why := in.unconfirmed(name, p, heard, window); why != "" {
			if c.firstWhyNot == "" {
				c.firstWhyNot = why
			}
			continue
		}
		c.until = append(c.until, p.Confirmed.Add(window))
	}
	slices.SortFunc(c.until, func(a, b time.Time) int { return b.Compare(a) })
	return c
}

// unconfirmed says why p does not confirm this node's ownership now; empty
// when it does.
func (in Input) unconfirmed(name string, p Peer, heard bool, window time.Duration) string {
	st := in.Status
	switch {
	case !heard:
		return fmt.Sprintf("never heard %s", name)
	case p.Withdrawn:
		return fmt.Sprintf("%s no longer vouches for epoch %d", p.Node, p.SeenEpoch)
	case !p.LastClaimed.IsZero() && in.Now.Sub(p.LastClaimed) < window && !in.releasedBy(p.Node):
		return fmt.Sprintf("%s claims %s", p.Node, in.Address)
	case p.SeenOwner != in.Node || p.SeenEpoch != st.Epoch:
		return fmt.Sprintf("%s reports epoch %d owned by %s", p.Node, p.SeenEpoch, orNone(p.SeenOwner))
	case p.Confirmed.IsZero():
		return fmt.Sprintf("%s echoed none of our heartbeats", p.Node)
	case in.Now.Sub(p.Confirmed) >= window:
		return fmt.Sprintf("has no confirmation from %s for a heartbeat sent within %s", p.Node, short(window))
	}
	return ""
}

// pending returns how much longer a new owner must wait before announcing,
// and what for; zero when it may announce.
//
// Without a release, the new owner first keeps the promise it made as a
// peer: it confirmed the previous owner's proof of liveness until Promised
// plus window, so it announces only after that proof has run out. After a
// hard loss the previous owner died around Promised, and the controller,
// which waited deadtime+guard since its last Lease renewal, names the new
// owner after the promise expired. A new owner that never heard the previous
// owner (within twice deadtime) listens a full deadtime from when it learned
// its epoch. Released or not, it waits until no other peer claimed the
// address for deadtime.
func (in Input) pending() (time.Duration, string) {
	st, deadtime := in.Status, in.listenDeadtime()
	var left time.Duration
	var why string
	longer := func(d time.Duration, reason string) {
		if d > left {
			left, why = d, reason
		}
	}
	if !st.PreviousOwnerReleased {
		d := in.Promised.Add(in.Timing.aliveWindow()).Sub(in.Now)
		longer(d, fmt.Sprintf("keeping for %s more the promise made to %s, whose ownership this node confirmed",
			short(d), orNone(st.PreviousOwner)))
		if !in.heardRecently(st.PreviousOwner) {
			since := in.Now
			if in.Memory.WaitingEpoch == st.Epoch && !in.Memory.WaitingSince.IsZero() {
				since = in.Memory.WaitingSince
			}
			d := deadtime - in.Now.Sub(since)
			longer(d, fmt.Sprintf("listening %s more before announcing %s (previous owner %s released nothing)",
				short(d), in.Address, orNone(st.PreviousOwner)))
		}
	}
	for _, p := range in.Peers {
		if p.LastClaimed.IsZero() || in.releasedBy(p.Node) {
			continue
		}
		d := deadtime - in.Now.Sub(p.LastClaimed)
		longer(d, fmt.Sprintf("waiting %s more for %s to stop claiming %s", short(d), p.Node, in.Address))
	}
	return left, why
}

// releasedBy tells whether node is the previous owner and the controller
// recorded that it removed the address at the current epoch: its claims
// before that say nothing about now. Without this, a planned hand-off's
// new owner, whose voters include the front it took over from, went
// without that voter's confirmation for a proof window after its last
// claim, and fenced itself if its Lease proof ran out meanwhile.
func (in Input) releasedBy(node string) bool {
	return in.Status.PreviousOwnerReleased && node == in.Status.PreviousOwner
}

// heardRecently tells whether this node heard node within twice deadtime:
// recently enough for its silence since its last claim to mean something.
func (in Input) heardRecently(node string) bool {
	p, heard := in.peer(node)
	return heard && in.Now.Sub(p.LastHeard) < 2*in.listenDeadtime()
}

// listenDeadtime is how long a new owner must not hear a claim before it
// announces: the longest deadtime the previous owner may still be using.
func (in Input) listenDeadtime() time.Duration {
	return max(in.Timing.Deadtime, in.Status.FencingDeadtime)
}

// vouchedWithSpare tells whether every other voter confirms this node with
// time to spare: the proof each gives runs past the next confirmation due
// (a keepalive after the last, which voters send as soon as they hear this
// node's heartbeat) by half a keepalive more, or a quarter where the window
// is too short for that (the fastest settings: window 2.5 keepalives).
// Below that, a lost or late heartbeat could end the proof before a Lease
// renewal started then could replace it, so the agent renews its Lease
// every keepalive. Every voter, not just a quorum: a voter that confirms
// nothing (dead, or gone) is left out of the next epoch only once the
// controller sees this node's Lease fresh (rule 6 of Elect), and until then
// the quorum has one voter fewer to spare.
//
// Without voters the status comes from an older controller, which moves the
// address on the Lease alone: the owner renews it every keepalive.
func (in Input) vouchedWithSpare() bool {
	if len(in.Status.Voters) == 0 {
		return false
	}
	window, k := in.Timing.aliveWindow(), in.Timing.Keepalive
	c := in.peerConfirmations(window)
	return c.voters > 0 && len(c.until) == c.voters && c.until[c.voters-1].Sub(in.Now) > min(k*3/2, window-k*5/4)
}

// otherVoters are the voters of the epoch other than this node; the
// candidates when the status has no voters.
func (in Input) otherVoters() []string {
	voters := in.Status.Voters
	if len(voters) == 0 {
		voters = in.Status.Candidates
	}
	var others []string
	for _, c := range voters {
		if c != in.Node && !slices.Contains(others, c) {
			others = append(others, c)
		}
	}
	return others
}

func (in Input) peer(name string) (Peer, bool) {
	for _, p := range in.Peers {
		if p.Node == name && !p.LastHeard.IsZero() {
			return p, true
		}
	}
	return Peer{}, false
}

// short prints a duration to the tenth of a second, for reasons.
func short(d time.Duration) string {
	if d > 0 && d < 100*time.Millisecond {
		d = 100 * time.Millisecond
	}
	return d.Round(100 * time.Millisecond).String()
}

func orNone(node string) string {
	if node == "" {
		return "none"
	}
	return node
}

// MinRecheck bounds how soon after a pass an agent decides again on time
// alone, so that a decision due again at once cannot spin its loop.
const MinRecheck = 10 * time.Millisecond

// NextPass is when an agent that made decisions ds decides again on time
// alone, at the latest: at the earliest recheck they ask for (a withdrawal
// due, a wait ending, a proof running out), between MinRecheck and longest.
// The agent's loop and the simulation's both wait this, so the simulation
// checks the schedule the agent keeps. At the fastest settings a fixed
// 100 ms tick's delay was up to a third of the deadtime, at each step of a
// move.
func NextPass(longest time.Duration, ds ...Decision) time.Duration {
	next := longest
	for _, d := range ds {
		if d.RecheckAfter > 0 {
			next = min(next, d.RecheckAfter)
		}
	}
	return max(next, MinRecheck)
}
