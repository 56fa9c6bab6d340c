package controllers

import (
	"net/netip"
	"slices"
	"time"

	"github.com/webfarm/webfarm/agent/ownership"
)

// WithdrawalInput is everything the withdrawal of a FailoverIP's ownership
// depends on: the FailoverIP is being deleted, or its address is in
// conflict, so no node may hold it.
type WithdrawalInput struct {
	Now             time.Time
	Deadtime, Guard time.Duration
	// Presence is how long after its last renewal seen a front counts as
	// present (ElectionInput.Presence); zero: deadtime plus guard alone.
	Presence time.Duration
	Current  Ownership
	// Holder is the front that may still hold the address: the owner, or
	// once the ownership was taken away, the previous owner.
	Holder ElectionFront
	// AcknowledgedEpoch is the latest epoch at which Holder's agent reports
	// the address of this object (same UID) not on its node, released or
	// fenced; 0 when it reports none.
	AcknowledgedEpoch int64
	// Voters are those of the epoch Holder owned (status.voters, kept
	// through the withdrawal): Holder may hold through them.
	Voters []string
	// VoterFronts are what the election knows of the voters other than
	// Holder, from their agents' reports (those that have a FrontNode).
	VoterFronts []ElectionFront
}

// How a withdrawal ended: why no node can hold the address any more.
const (
	clearUnowned      = "no node held it"
	clearAcknowledged = "its last owner reported removing it"
	clearFenced       = "its last owner's Lease was silent for the presence window, and its peers vouch for it no more"
)

// WithdrawalResult is the ownership to write and whether the address is
// held nowhere.
type WithdrawalResult struct {
	Ownership
	// Withdrawn: the owner was taken away now, at a new epoch.
	Withdrawn bool
	// Clear: no node can hold the address any more; How says why.
	Clear bool
	How   string
	// Voters are the input's, kept in the status until clear.
	Voters []string
	// RequeueAfter is when the holder's silence would prove it fenced; zero
	// when Clear, or when only a report can prove it.
	RequeueAfter time.Duration
}

// Withdraw takes the ownership of a FailoverIP away and tells when no node
// can hold its address any more. The rules, in order:
//
//  1. An owner is replaced by nobody at epoch+1. Its agent removes the
//     address as soon as it sees that it no longer owns it, and says so.
//  2. With no previous owner, or one whose release is already recorded,
//     nobody holds the address.
//  3. The previous owner's agent reports the address gone at the current
//     epoch or later: it is gone.
//  4. The previous owner's Lease has been silent for the presence window
//     (and at least deadtime plus guard), and its peers prove nothing: it
//     had no other voter, or enough of them (rule 5 of Elect) report that
//     they have vouched for nobody for the fencing deadtime since they saw
//     the withdrawal epoch (OwnerUnheard at that epoch), or are marked out
//     of service. A quiet
//     Lease proves nothing sooner — a live owner renews it every
//     QuietLeaseInterval and holds through its peers meanwhile — and
//     neither does a long silence alone: an owner cut off from the API
//     server with its voters holds through them as long as they hear it
//     (rule 4 of DESIGN.md). A live owner sees the new epoch, and so do its
//     peers, which stop vouching for it: rule 1 ends well before then.
//
// Once clear, the release is recorded (previousOwnerReleased), so that it
// stays clear whatever the previous owner does next. Nobody is ever given
// the address here.
func Withdraw(in WithdrawalInput) WithdrawalResult {
	own := in.Current
	res := WithdrawalResult{Voters: in.Voters}
	if own.Owner != "" {
		own = Ownership{Epoch: own.Epoch + 1, PreviousOwner: own.Owner, Timing: own.Timing}
		res.Withdrawn = true
	}
	own.ReleaseRequested = false
	fencedAt := in.Holder.LastAlive.Add(max(in.fencing().fenceAfter(), in.Presence))
	switch {
	case own.PreviousOwner == "" || own.PreviousOwnerReleased:
		res.Clear, res.How = true, clearUnowned
	case in.AcknowledgedEpoch >= own.Epoch:
		res.Clear, res.How = true, clearAcknowledged
	case !in.peersProveNothing(own.Epoch):
		// Only a voter's report can end it, and a report wakes the
		// controller; or a voter seen out of service long enough.
		res.RequeueAfter = untilShutDownCounts(in.VoterFronts, in.fencing().Deadtime)
	case !in.Now.Before(fencedAt):
		res.Clear, res.How = true, clearFenced
	default:
		res.RequeueAfter = fencedAt.Sub(in.Now)
	}
	if res.Clear && own.PreviousOwner != "" {
		own.PreviousOwnerReleased = true
	}
	res.Ownership = own
	return res
}

// peersProveNothing tells whether the holder can no longer hold through
// its peers: it had no other voter (or the status, from an older
// controller, names none), or enough of them report at the withdrawal
// epoch that they have vouched for nobody for the fencing deadtime, or
// have been seen out of service that long, that the others are too few
// to confirm it
// (ownership.ReportsNeeded).
func (in WithdrawalInput) peersProveNothing(epoch int64) bool {
	others := otherVoters(in.Voters, in.Holder.Name)
	reports := 0
	for _, f := range in.VoterFronts {
		if slices.Contains(others, f.Name) && (f.shutDownFor(in.fencing().Deadtime) || (f.UnheardEpoch >= epoch && f.UnheardAfter >= in.fencing().Deadtime)) {
			reports++
		}
	}
	return reports >= ownership.ReportsNeeded(len(others))
}

// fencing is the longest deadtime and guard the holder may use
// (status.fencingTiming).
func (in WithdrawalInput) fencing() Timing {
	return Timing{Deadtime: in.Deadtime, Guard: in.Guard}.AtLeast(in.Current.Timing)
}

// unproven tells whether an ownership was taken away from a node that has
// not yet been shown to have stopped holding the address: nobody may be
// given it before then.
func unproven(own Ownership) bool {
	return own.Owner == "" && own.PreviousOwner != "" && !own.PreviousOwnerReleased
}

// canonicalAddress is the one spelling of an address that all of its
// spellings share: IPv4-mapped IPv6 as IPv4, IPv6 in its shortest form. An
// address that does not parse (the API server refuses them) stays as it is.
func canonicalAddress(s string) string {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return s
	}
	return ip.Unmap().WithZone("").String()
}
