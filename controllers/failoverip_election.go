package controllers

import (
	"hash/fnv"
	"slices"
	"time"

	"github.com/webfarm/webfarm/agent/ownership"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// Ownership is the fenced ownership of one FailoverIP, as kept in its status.
type Ownership struct {
	Owner                 string
	Epoch                 int64
	PreviousOwner         string
	PreviousOwnerReleased bool
	ReleaseRequested      bool
	// Timing is the longest deadtime and guard the owner may still be using
	// (status.fencingTiming): a silent owner is fenced by it.
	Timing Timing
}

// Timing is a deadtime and a guard.
type Timing struct {
	Deadtime, Guard time.Duration
}

// fenceAfter is how long a silent owner's heartbeat must have been stale
// before it must have removed the address: the owner gives up after
// deadtime minus guard, and guard more absorbs the delays between its
// renewals and the controller seeing them.
func (t Timing) fenceAfter() time.Duration { return t.Deadtime + t.Guard }

// AtLeast is the longer of t and o, field by field.
func (t Timing) AtLeast(o Timing) Timing {
	return Timing{Deadtime: max(t.Deadtime, o.Deadtime), Guard: max(t.Guard, o.Guard)}
}

// ElectionFront is what the election knows of one front.
type ElectionFront struct {
	Name string
	// Selected: a front of a WebFarm that lists the FailoverIP, matching its
	// frontSelector.
	Selected bool
	// Draining: the node's drain annotation asks to drain it.
	Draining bool
	// ShuttingDown: its agent stops gracefully and said so.
	ShuttingDown bool
	// Heard: the controller has seen the node's Lease.
	Heard bool
	// LastAlive is when the controller last saw the Lease change, by its own
	// clock; when it never did, when it started watching.
	LastAlive time.Time
	// ReleasedEpoch is the epoch at which the agent reports having removed
	// the address, released or fenced (0 when it reports neither).
	ReleasedEpoch int64
	// NotServing: its agent reports that it cannot serve the address (its
	// HAProxy, link or ping targets fail). The zero value serves, as does a
	// front whose agent has not reported, such as an older agent.
	NotServing bool
	// UnheardEpoch is the epoch at which the agent reports the owner
	// unheard (OwnerUnheard): as a voter of that epoch it will never vouch
	// for the owner again. 0 when it reports nothing of the kind.
	UnheardEpoch int64
	// UnheardAfter is the deadtime it waited before that report.
	UnheardAfter time.Duration
	// UnheardFronts are the fronts its agent reports it has not heard
	// from for a deadtime (status.unheardFronts).
	UnheardFronts []string
	// HoldingEpoch is the epoch at which its agent reports holding the
	// address; 0 when it reports nothing of the kind.
	HoldingEpoch int64
	// LeaseVersion names the renewal of its Lease that LastAlive dates
	// (webfarmv1.LeaseRenewalVersion); "" when none was seen.
	LeaseVersion string
	// OutOfService: an operator tainted its Node node.kubernetes.io/
	// out-of-service, Kubernetes' word for a node known to be shut down.
	// It vouches for nobody, so it counts as a voter that reports the
	// owner unheard: the one way to move an address whose owner died with
	// every other voter of its epoch.
	OutOfService bool
	// OutOfServiceFor is how long the controller has seen that taint
	// (HeartbeatTracker.OutOfServiceFor). It counts as a report only once
	// seen for the fencing deadtime: its promises made before it was shut
	// down may let the owner hold until then (random schedule 6546931:
	// two voters powered off and tainted at once, the owner back from a
	// power cycle on their last confirmations, and the address given to
	// another front at the same moment).
	OutOfServiceFor time.Duration
}

// shutDownFor tells whether f is out of service, seen so for at least
// deadtime: whatever it promised before it was shut down has run out.
func (f ElectionFront) shutDownFor(deadtime time.Duration) bool {
	return f.OutOfService && f.OutOfServiceFor >= deadtime
}

// ElectionInput is everything the election of one FailoverIP depends on.
type ElectionInput struct {
	// Key is the FailoverIP as "namespace/name"; it spreads addresses over
	// equally good fronts.
	Key string
	Now time.Time
	// Deadtime and Guard are the spec's, at Generation.
	Deadtime, Guard time.Duration
	// Presence is how long after the controller last saw a front's Lease
	// renewed the front still counts as present (a candidate, or a live
	// owner): webfarmv1.PresenceWindow, since agents renew it only every
	// QuietLeaseInterval when nothing needs it faster. Deadtime when zero.
	Presence   time.Duration
	Generation int64
	// OwnerGeneration is the FailoverIP generation the current owner's agent
	// reports acting on at the current epoch; 0 when it reports nothing.
	OwnerGeneration int64
	// OwnerHolding: the current owner's agent reports holding the address
	// at the current epoch.
	OwnerHolding  bool
	PreferredNode string
	AutoFailback  bool
	Current       Ownership
	// Voters are the current epoch's (status.voters); empty in a status
	// written by an older controller.
	Voters []string
	// Fronts must include the current owner, selected or not.
	Fronts []ElectionFront
}

// ElectionResult is the ownership to write and why.
type ElectionResult struct {
	Ownership
	// Candidates may hold the address now, sorted by name.
	Candidates []string
	// Voters vouch for the owner at the resulting epoch: the candidates and
	// the owner when the epoch is new, else the current epoch's unchanged.
	Voters []string
	// OwnerRenewal acknowledges the owner's Lease renewal seen last
	// (status.ownerRenewal): only an acknowledged renewal proves the owner
	// alive to itself.
	OwnerRenewal string
	// Reason is one of webfarmv1.ReasonOwned, ReasonNoCandidate,
	// ReasonAwaitingFence, ReasonAwaitingRelease and ReasonHandOffBlocked.
	Reason string
	// Successor is the front that takes over once the owner releases.
	Successor string
	// OwnerChanged is true when Owner (and Epoch) changed.
	OwnerChanged bool
	// Renewed is true when the owner stays and the epoch grows (rule 6).
	Renewed bool
	// RequeueAfter is when the result may change with time alone: the owner's
	// heartbeat turning stale, or its fence expiring. Zero when only an
	// event can change it.
	RequeueAfter time.Duration
}

// Elect decides who owns a FailoverIP. The rules, in order:
//
//  1. The owner that acknowledged a release at the current epoch has stopped
//     announcing: the best candidate takes over at once.
//  2. No owner: the best candidate takes the address; nobody can still hold
//     it, since an owner is removed only once it must have stopped.
//  3. An owner that is a candidate keeps the address — unless autoFailback
//     brings it back to the preferred node, through a planned hand-off.
//  4. A live owner that is no longer a candidate (draining, shutting down,
//     deselected) is asked to release; a draining or shutting-down owner with
//     no successor keeps the address rather than leaving it unheld.
//  5. A silent owner keeps the address until it can prove itself alive
//     neither through its Lease nor through its peers. Its Lease proves
//     nothing once the controller has not seen it renewed for deadtime plus
//     guard (the longest the owner may still be using, fencingTiming). Its
//     peers prove nothing once enough voters of the epoch report it unheard
//     that the others are too few to confirm it (agent/ownership/quorum.go):
//     a confirming quorum would include a reporter, whose last confirmation
//     ran out before it withdrew. Both together: the best candidate that
//     is not the owner takes over at once, preferring a voter that reported
//     the owner unheard (it evidently runs and reaches the API server).
//     With no other voter, or no voters at all (a status from an older
//     controller), the Lease alone decides, as it always did. Otherwise,
//     without enough reports, an owner that needs every other voter to
//     vouch for it (two or three voters) is replaced by one of them once it
//     has not renewed its Lease for the presence window.
//  6. An owner that holds the address while some candidate is no voter (a
//     front joined or came back since the epoch began, or the status was
//     written by an older controller and has no voters), or while a voter
//     is gone (dead, shutting down, no longer a front), is renewed at a new
//     epoch with every present front as a voter, as the same owner — nobody
//     else held the epoch — once its Lease is fresh: the agent renews it every
//     keepalive when it sees voters behind, or lacks a voter's
//     confirmation (as it does from a gone one), so that the new status
//     acknowledges a renewal that proves it alive until the new voters
//     vouch for it. An owner that does not report holding the address is
//     renewed at once: it has nothing to keep across the epoch, and the
//     fronts that joined while it waited must be able to report it unheard
//     (random schedule 506048: a waiting owner and its only other voter,
//     chosen while three fronts were away, lost together, the three back).
//
// A front that does not serve is no candidate while another one serves, so
// an owner that stops serving is asked to release (rule 4). When none
// serves, all of them are candidates again: the owner keeps the address, as
// Heartbeat's ipfail left resources where they were when the peer had no
// better connectivity (autoFailback too waits for the preferred node to
// serve), and an unheld address still gets an owner.
//
// Every change of owner increments the epoch by one.
func Elect(in ElectionInput) ElectionResult {
	in.Current.Timing = in.fencingTiming()
	res := in.elect()
	if owner := in.Current.Owner; owner != "" && !res.OwnerChanged && !res.Renewed {
		// Whatever else the owner is waited for, its Lease turning silent
		// may move the address (rule 5).
		res = in.untilLeaseSilent(res, in.front(owner))
		res = in.untilShutDownCounts(res)
	}
	if res.Owner != "" {
		res.OwnerRenewal = in.front(res.Owner).LeaseVersion
	}
	return res
}

func (in ElectionInput) elect() ElectionResult {
	cands := candidates(in)
	cur := in.Current
	owner := in.front(cur.Owner)
	switch {
	case cur.Owner != "" && cur.Epoch > 0 && owner.ReleasedEpoch == cur.Epoch:
		return in.handOver(cands, best(in, cands), true)
	case cur.Owner == "":
		return in.handOverFromNobody(cands, best(in, cands))
	case in.peersProveNothing(owner) && in.leaseSilent(owner):
		// The lost owner is no voter of the next epoch: it could never
		// vouch for its successor, which would need its Lease for good.
		res := in.handOver(cands, in.successor(cands, cur.Owner), false)
		res.Voters = slices.DeleteFunc(res.Voters, func(v string) bool { return v == cur.Owner })
		return res
	case slices.Contains(cands, cur.Owner):
		if in.AutoFailback && in.PreferredNode != cur.Owner && slices.Contains(cands, in.PreferredNode) && !in.front(in.PreferredNode).NotServing {
			return in.requestRelease(cands, owner, in.PreferredNode)
		}
		if in.votersBehind(cands) && (in.leaseFresh(owner) || !in.OwnerHolding) {
			return in.renew(cands, owner)
		}
		return in.keep(cands, owner, webfarmv1.ReasonOwned)
	case in.fresh(owner):
		return in.releaseLiveOwner(cands, owner)
	default:
		return in.fence(cands, owner)
	}
}

// peersProveNothing tells whether the owner cannot hold the address through
// its peers: enough voters report it unheard that those left are too few
// to confirm it (ownership.ReportsNeeded), or it has no other voter. Under a
// status from an older controller (no voters), the new owner keeps the
// promise it made as a peer instead, as agents always did.
func (in ElectionInput) peersProveNothing(owner ElectionFront) bool {
	if len(in.Voters) == 0 {
		return true
	}
	return in.unheardBy(owner) >= ownership.ReportsNeeded(len(otherVoters(in.Voters, owner.Name)))
}

// unheardBy counts the voters of the current epoch other than the owner
// that report the owner unheard at this epoch, after waiting at least the
// longest deadtime the owner may use. A voter that waited less (its view
// was behind a raise of the deadtime) reports again once it has waited
// that long.
func (in ElectionInput) unheardBy(owner ElectionFront) int {
	n := 0
	for _, f := range in.Fronts {
		if f.Name != owner.Name && slices.Contains(in.Voters, f.Name) && in.reportsUnheard(f) {
			n++
		}
	}
	return n
}

// otherVoters are the distinct voters other than owner.
func otherVoters(voters []string, owner string) []string {
	others := slices.DeleteFunc(slices.Clone(voters), func(v string) bool { return v == owner })
	slices.Sort(others)
	return slices.Compact(others)
}

func (in ElectionInput) reportsUnheard(f ElectionFront) bool {
	return f.shutDownFor(in.Current.Timing.Deadtime) || (f.UnheardEpoch == in.Current.Epoch && f.UnheardAfter >= in.Current.Timing.Deadtime)
}

// untilShutDownCounts makes res come back when a voter seen out of service
// starts to count as a report (shutDownFor).
func (in ElectionInput) untilShutDownCounts(res ElectionResult) ElectionResult {
	voters := slices.DeleteFunc(slices.Clone(in.Fronts), func(f ElectionFront) bool { return !slices.Contains(in.Voters, f.Name) })
	if d := untilShutDownCounts(voters, in.Current.Timing.Deadtime); d > 0 && (res.RequeueAfter <= 0 || d < res.RequeueAfter) {
		res.RequeueAfter = d
	}
	return res
}

// untilShutDownCounts is how long until the first of voters seen out of
// service counts as a report (shutDownFor at deadtime); zero when none
// is waited for.
func untilShutDownCounts(voters []ElectionFront, deadtime time.Duration) time.Duration {
	var next time.Duration
	for _, f := range voters {
		if d := deadtime - f.OutOfServiceFor; f.OutOfService && d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	return next
}

// leaseSilent tells whether the owner's Lease proves nothing any more: the
// controller has not seen it renewed for deadtime plus guard.
func (in ElectionInput) leaseSilent(owner ElectionFront) bool {
	return !in.Now.Before(owner.LastAlive.Add(in.Current.Timing.fenceAfter()))
}

// votersBehind tells whether a candidate is no voter of the current epoch,
// or a voter other than the owner is gone (no longer present, shutting
// down, or no front any more), or, under a status from an older
// controller, whether the owner holds the address: then it can take
// voters. A gone voter confirms nothing, so the owner needs its Lease
// every keepalive until a new epoch leaves it out, and an API outage would
// take the address down (finding 6).
func (in ElectionInput) votersBehind(cands []string) bool {
	if len(in.Voters) == 0 {
		return in.OwnerHolding
	}
	return slices.ContainsFunc(cands, func(c string) bool { return !slices.Contains(in.Voters, c) }) ||
		slices.ContainsFunc(in.Voters, func(v string) bool { return v != in.Current.Owner && in.gone(v) })
}

// gone tells whether a voter will confirm nothing any more: it is no
// front of the address now, its Lease is older than the presence window,
// or its agent is shutting down.
func (in ElectionInput) gone(name string) bool {
	i := slices.IndexFunc(in.Fronts, func(f ElectionFront) bool { return f.Name == name })
	return i < 0 || in.Fronts[i].ShuttingDown || in.Fronts[i].OutOfService || !in.fresh(in.Fronts[i])
}

// leaseFresh tells whether the owner's Lease was seen renewed within half
// its proof window: acknowledged in a new epoch, it still proves the owner
// alive for that long.
func (in ElectionInput) leaseFresh(owner ElectionFront) bool {
	return owner.Heard && in.Now.Sub(owner.LastAlive) < (in.Deadtime-in.Guard)/2
}

// untilLeaseSilent makes res come back when the owner's Lease turns silent,
// if its peers already prove nothing: that instant moves the address.
func (in ElectionInput) untilLeaseSilent(res ElectionResult, owner ElectionFront) ElectionResult {
	if !in.peersProveNothing(owner) {
		return res
	}
	if d := owner.LastAlive.Add(in.Current.Timing.fenceAfter()).Sub(in.Now); d > 0 && (res.RequeueAfter <= 0 || d < res.RequeueAfter) {
		res.RequeueAfter = d
	}
	return res
}

// successor is who takes over from an owner its voters no longer hear: the
// best of the candidates that reported it unheard, else of the others.
func (in ElectionInput) successor(cands []string, owner string) string {
	var reporters, others []string
	for _, c := range cands {
		switch {
		case c == owner:
		case in.reportsUnheard(in.front(c)):
			reporters = append(reporters, c)
		default:
			others = append(others, c)
		}
	}
	if next := best(in, reporters); next != "" {
		return next
	}
	return best(in, others)
}

// renew gives the owner a new epoch of its own, with voters: it keeps
// holding the address across it (nobody else held the epoch in between),
// through its Lease until the voters vouch for it at the new epoch.
//
// An owner that does not hold the address yet keeps waiting for the
// previous owner as before: the new epoch carries that one over.
func (in ElectionInput) renew(cands []string, owner ElectionFront) ElectionResult {
	res := in.handOver(cands, owner.Name, true)
	if !in.OwnerHolding {
		res.PreviousOwner, res.PreviousOwnerReleased = in.Current.PreviousOwner, in.Current.PreviousOwnerReleased
	}
	res.OwnerChanged, res.Renewed = false, true
	return res
}

// fencingTiming is the longest deadtime and guard the owner may be using.
// An owner acts on the spec it last saw, at least the one of the object
// version that named it owner, so any spec seen since it was last known to
// act on the current one may be in force: raising them counts at once,
// cutting them only once the owner reports acting on this very generation.
// Kept across a change of owner, since the new owner's wait for the previous
// one to stop may still need it; the new owner reports its generation at its
// first decision anyway.
func (in ElectionInput) fencingTiming() Timing {
	spec := Timing{Deadtime: in.Deadtime, Guard: in.Guard}
	if in.Current.Owner != "" && in.OwnerGeneration == in.Generation {
		return spec
	}
	return in.Current.Timing.AtLeast(spec)
}

// releaseLiveOwner starts a planned hand-off away from an owner that is alive
// but no longer a candidate.
func (in ElectionInput) releaseLiveOwner(cands []string, owner ElectionFront) ElectionResult {
	next := best(in, cands)
	if next == "" && owner.Selected {
		return in.keep(cands, owner, ReasonHandOffBlocked)
	}
	return in.requestRelease(cands, owner, next)
}

// fence moves the address away from a silent owner once it must have stopped
// announcing it.
func (in ElectionInput) fence(cands []string, owner ElectionFront) ElectionResult {
	fencedAt := owner.LastAlive.Add(in.Current.Timing.fenceAfter())
	if in.Now.Before(fencedAt) {
		res := in.result(cands, in.Current, webfarmv1.ReasonAwaitingFence)
		res.RequeueAfter = fencedAt.Sub(in.Now)
		return res
	}
	next := best(in, cands)
	if len(in.Voters) > 0 {
		// Its voters may still vouch for it, through an API outage of
		// its own. Only one of them, which keeps the promise it made by
		// vouching, may take over (rule 3 of docs/failover-safety.md),
		// and only where the owner needs every other voter to hold:
		// with more voters, a quorum without the successor could still
		// vouch, and only their reports can tell (rule 5).
		others := otherVoters(in.Voters, owner.Name)
		if ownership.ConfirmationsNeeded(len(others)) < len(others) {
			return in.result(cands, in.Current, webfarmv1.ReasonAwaitingFence)
		}
		next = best(in, slices.DeleteFunc(slices.Clone(cands), func(c string) bool { return c == owner.Name || !slices.Contains(in.Voters, c) }))
		if next == "" {
			return in.result(cands, in.Current, webfarmv1.ReasonAwaitingFence)
		}
	}
	return in.handOver(cands, next, false)
}

func (in ElectionInput) keep(cands []string, owner ElectionFront, reason string) ElectionResult {
	own := in.Current
	own.ReleaseRequested = false
	res := in.result(cands, own, reason)
	res.RequeueAfter = in.untilStale(owner)
	return res
}

func (in ElectionInput) requestRelease(cands []string, owner ElectionFront, successor string) ElectionResult {
	own := in.Current
	own.ReleaseRequested = true
	res := in.result(cands, own, webfarmv1.ReasonAwaitingRelease)
	res.Successor = successor
	res.RequeueAfter = in.untilStale(owner)
	return res
}

// handOver makes next (possibly nobody) the owner. released tells the new
// owner that the previous one acknowledged its release, so that it may
// announce at once.
func (in ElectionInput) handOver(cands []string, next string, released bool) ElectionResult {
	cur := in.Current
	if next == "" && cur.Owner == "" {
		return in.result(cands, cur, webfarmv1.ReasonNoCandidate)
	}
	own := Ownership{
		Owner:                 next,
		Epoch:                 cur.Epoch + 1,
		PreviousOwner:         cur.Owner,
		PreviousOwnerReleased: released,
		Timing:                cur.Timing,
	}
	reason := webfarmv1.ReasonOwned
	if next == "" {
		reason = webfarmv1.ReasonNoCandidate
	}
	res := in.result(cands, own, reason)
	res.Voters = in.votersOf(cands, next)
	res.OwnerChanged = true
	if next != "" {
		res.RequeueAfter = in.untilStale(in.front(next))
	}
	return res
}

// handOverFromNobody names next after an epoch that had no owner. The owner
// before that epoch was fenced or withdrawn without acknowledging, and may
// still hold the address through its peers: next inherits it as its
// previous owner, and waits for it as after a hard loss, unless it has since
// reported the address gone.
func (in ElectionInput) handOverFromNobody(cands []string, next string) ElectionResult {
	res := in.handOver(cands, next, true)
	cur := in.Current
	if !res.OwnerChanged || cur.PreviousOwner == "" || cur.PreviousOwnerReleased {
		return res
	}
	if in.front(cur.PreviousOwner).ReleasedEpoch < cur.Epoch {
		res.PreviousOwner, res.PreviousOwnerReleased = cur.PreviousOwner, false
	}
	return res
}

func (in ElectionInput) result(cands []string, own Ownership, reason string) ElectionResult {
	return ElectionResult{Ownership: own, Candidates: cands, Voters: in.Voters, Reason: reason}
}

// votersOf are the voters of a new epoch owned by owner, sorted; none
// without an owner. They are the candidates, the owner, and every other
// present front of the address that is not going away, draining or not
// serving: it runs, hears heartbeats and can report the owner unheard.
// The more voters that can report, the fewer deaths leave an owner nobody
// may replace: an owner that died with the only other voter of its epoch
// keeps the address unheld, since the controller cannot tell them from two
// fronts that still hear each other through an API outage (rule 5).
func (in ElectionInput) votersOf(cands []string, owner string) []string {
	if owner == "" {
		return nil
	}
	voters := append(slices.Clone(cands), owner)
	for _, f := range in.Fronts {
		if f.Selected && !f.ShuttingDown && !f.OutOfService && in.fresh(f) && in.caughtUp(f) {
			voters = append(voters, f.Name)
		}
	}
	slices.Sort(voters)
	return slices.Compact(voters)
}

// untilStale is how long until f's heartbeat turns stale; zero if it is.
func (in ElectionInput) untilStale(f ElectionFront) time.Duration {
	if !in.fresh(f) {
		return 0
	}
	return f.LastAlive.Add(in.presence()).Sub(in.Now)
}

// fresh tells whether f counts as present: its Lease seen renewed within
// the presence window. Agents renew it every QuietLeaseInterval when no
// address needs it faster.
func (in ElectionInput) fresh(f ElectionFront) bool {
	return heartbeat{heard: f.Heard, lastAlive: f.LastAlive}.freshAt(in.Now, in.presence())
}

func (in ElectionInput) presence() time.Duration {
	if in.Presence > 0 {
		return in.Presence
	}
	return in.Deadtime
}

// front returns the named front. An owner missing from the input counts as
// alive now, so that a caller's omission can only delay a move, never cause
// an unsafe one.
func (in ElectionInput) front(name string) ElectionFront {
	for _, f := range in.Fronts {
		if f.Name == name {
			return f
		}
	}
	return ElectionFront{Name: name, Heard: true, LastAlive: in.Now}
}

// candidates are the fronts that are selected, not draining, not shutting
// down, whose heartbeat is fresh, that no other present front reports
// unheard (the owner excepted: its voters decide on it) and that serve,
// sorted by name; when none of them serves, those that would be candidates
// but for serving.
func candidates(in ElectionInput) []string {
	var eligible, serving []string
	for _, f := range in.Fronts {
		if f.Selected && !f.Draining && !f.ShuttingDown && !f.OutOfService && in.fresh(f) && (f.Name == in.Current.Owner || in.caughtUp(f)) {
			eligible = append(eligible, f.Name)
			if !f.NotServing {
				serving = append(serving, f.Name)
			}
		}
	}
	out := serving
	if len(out) == 0 {
		out = eligible
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// caughtUp tells whether f, not the owner, shows signs of life that its
// Lease, renewed only every QuietLeaseInterval, may not show yet: no other
// present front reports it unheard, and its agent does not report holding
// the address at an older epoch — an owner that lost the address without
// reporting since may not reach the API server, and would not see that it
// is named again.
func (in ElectionInput) caughtUp(f ElectionFront) bool {
	return !in.unheardByPeers(f.Name) && (f.HoldingEpoch == 0 || f.HoldingEpoch >= in.Current.Epoch)
}

// unheardByPeers tells whether most other present fronts report node
// unheard, not counting a reporter that most others report unheard: a
// front that died or stopped keeps its last report, and one that went
// deaf reports everyone, and neither must keep a live front out.
func (in ElectionInput) unheardByPeers(node string) bool {
	return in.mostReport(node, func(g ElectionFront) bool { return !in.mostReport(g.Name, nil) })
}

// mostReport tells whether more than half of the present fronts other than
// node report it unheard, counting only reporters that count (all when
// counts is nil).
func (in ElectionInput) mostReport(node string, counts func(ElectionFront) bool) bool {
	var others, reporters int
	for _, g := range in.Fronts {
		if g.Name == node || !in.fresh(g) {
			continue
		}
		others++
		if slices.Contains(g.UnheardFronts, node) && (counts == nil || counts(g)) {
			reporters++
		}
	}
	return 2*reporters > others
}

// best is the preferred node when it is a candidate, else the candidate that
// ranks first for this FailoverIP by rendezvous hashing — stable as fronts
// come and go, and spreading addresses evenly. "" when there is none.
func best(in ElectionInput, cands []string) string {
	if slices.Contains(cands, in.PreferredNode) {
		return in.PreferredNode
	}
	var top string
	var topRank uint64
	for _, c := range cands {
		if r := rank(in.Key, c); top == "" || r > topRank {
			top, topRank = c, r
		}
	}
	return top
}

func rank(key, node string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(node))
	return h.Sum64()
}
