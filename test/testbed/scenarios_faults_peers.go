package testbed

import "context"

// FaultScenariosTwoFronts are the fault trials that need a farm of two
// fronts (Options.Fronts 2): the partition that a quorum of candidates
// alone could not decide, where the API server is the witness vote.
func FaultScenariosTwoFronts() []Scenario {
	return []Scenario{{"two-front farm partitioned", Partitioned}}
}

// Partitioned: the two fronts of a two-front farm stop hearing each other's
// peer datagrams (dropped both ways in the owner's namespace), both still
// reach the API server. The owner keeps proving itself alive through its
// Lease, so the VIP must stay where it is, and the other front, which hears
// no claim any more, must not take it.
func Partitioned(ctx context.Context, tb *Testbed) (*Result, error) {
	return tb.faultTrial(ctx, fault{
		name:   "two-front farm partitioned",
		says:   "the two fronts cannot hear each other's peer datagrams (dropped both ways in its namespace), both still reach the API server; healed after %s",
		inject: func(f *Front) error { return f.blockPeers(true) },
		undo:   func(f *Front) error { return f.blockPeers(false) },
	})
}

// MuteOwner: every peer datagram the owner sends is dropped, while it still
// hears its peers and reaches the API server. Its peers no longer hear its
// claims or its heartbeats; the VIP must not be announced by a second front
// all the same.
func MuteOwner(ctx context.Context, tb *Testbed) (*Result, error) {
	return tb.faultTrial(ctx, fault{
		name:   "owner mute",
		says:   "every peer datagram it sends is dropped (it still hears its peers and reaches the API server); heard again after %s",
		inject: func(f *Front) error { return f.mutePeers(true) },
		undo:   func(f *Front) error { return f.mutePeers(false) },
	})
}
