package controllers

import (
	"net/netip"
	"time"
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
}

// How a withdrawal ended: why no node can hold the address any more.
const (
	clearUnowned      = "no node held it"
	clearAcknowledged = "its last owner reported removing it"
	clearFenced       = "its last owner's Lease was silent for the presence window"
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
	// RequeueAfter is when the holder's silence would prove it fenced; zero
	// when Clear.
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
//     (and at least deadtime plus guard): it is gone. A quiet Lease proves
//     nothing sooner — a live owner renews it every QuietLeaseInterval and
//     holds through its peers meanwhile — but a live owner sees the new
//     epoch, and so do its peers, which stop vouching for it: rule 1 ends
//     well before then.
//
// Once clear, the release is recorded (previousOwnerReleased), so that it
// stays clear whatever the previous owner does next. Nobody is ever given
// the address here.
func Withdraw(in WithdrawalInput) WithdrawalResult {
	own := in.Current
	res := WithdrawalResult{}
	if own.Owner != "" {
		own = Ownership{Epoch: own.Epoch + 1, PreviousOwner: own.Owner}
		res.Withdrawn = true
	}
	own.ReleaseRequested = false
	fencedAt := in.Holder.LastAlive.Add(max(in.Deadtime+in.Guard, in.Presence))
	switch {
	case own.PreviousOwner == "" || own.PreviousOwnerReleased:
		res.Clear, res.How = true, clearUnowned
	case in.AcknowledgedEpoch >= own.Epoch:
		res.Clear, res.How = true, clearAcknowledged
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
