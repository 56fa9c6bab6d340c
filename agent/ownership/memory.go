package ownership

import "time"

// Memory is what the agent remembers about one FailoverIP between two
// decisions. The zero value is a node that just started: it holds nothing,
// gave nothing up, and has not started waiting.
type Memory struct {
	// Holding is true from the moment the agent decides to hold the address
	// until it has removed it; HeldEpoch is the epoch it holds it at.
	Holding   bool
	HeldEpoch int64
	// GaveUp is Release or Fence once the agent removed the address at
	// GaveUpEpoch, for GaveUpReason (GaveUpCause for a Fence); NotOwner
	// when it gave up nothing.
	GaveUp       Action
	GaveUpEpoch  int64
	GaveUpReason string
	GaveUpCause  FenceCause
	// WaitingSince is when the agent started waiting for WaitingEpoch.
	WaitingEpoch int64
	WaitingSince time.Time
	// ViewSince is when the agent, not owning the address, first decided
	// on ViewEpoch: a voter withdraws only once it has known the epoch for
	// deadtime. Not saved: a restarted agent counts from its start.
	ViewEpoch int64
	ViewSince time.Time
}

// After returns the memory once d is carried out at now. Record a Hold before
// adding the address, so that heartbeats claim it from then on; record every
// other action once the address is gone, so that they stop claiming it only
// then.
func (m Memory) After(d Decision, now time.Time) Memory {
	switch d.Action {
	case Hold:
		m.Holding, m.HeldEpoch = true, d.Epoch
	case Wait:
		if m.WaitingEpoch != d.Epoch || m.WaitingSince.IsZero() {
			m.WaitingEpoch, m.WaitingSince = d.Epoch, now
		}
	case Release, Fence:
		m.Holding, m.HeldEpoch = false, 0
		if m.GaveUp == NotOwner || d.Epoch > m.GaveUpEpoch {
			m.GaveUp, m.GaveUpEpoch, m.GaveUpReason, m.GaveUpCause = d.Action, d.Epoch, d.Reason, d.Cause
		}
	case NotOwner, Withdraw:
		m.Holding, m.HeldEpoch = false, 0
		if m.ViewEpoch != d.Epoch || m.ViewSince.IsZero() {
			m.ViewEpoch, m.ViewSince = d.Epoch, now
		}
	}
	return m
}
