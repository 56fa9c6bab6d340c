package ownership

// The quorum of an owner's voters.
//
// An owner proves itself alive through its Lease (the API server's vote,
// which the controller counts as "the Lease is not silent") or through its
// other voters' confirmations. The controller moves the address away from
// a silent owner only when its Lease is silent and enough of those voters
// report it unheard. A voter reports an owner unheard only once every
// confirmation it gave has run out, and never confirms that owner at that
// epoch again. So if the confirmations an owner needs plus the reports the
// controller needs add up to more than the other voters, some voter is on
// both sides, and the owner's proof through its peers has run out for good
// before the controller can move the address.
//
// Any split that adds up to one more than the other voters keeps that
// invariant. The one below counts the API server as one more voter, the
// owner's Lease being its vote, and takes a strict majority each way. An
// owner cut off from the API server keeps the address while it and the
// voters that confirm it are more than half of the voters plus one, so a
// few dead voters no longer drop it (finding 6: with seven voters, two may
// die); and the controller, whose silent Lease is one vote, replaces a
// dead owner once about half of the other voters report it, so most
// simultaneous deaths still move the address. With two or three voters
// this is the rule as it always was: the owner needs every other voter,
// and one report moves it.

// ConfirmationsNeeded is how many of an owner's other voters must confirm
// it for it to hold the address through its peers: with the owner itself,
// more than half of the voters and the API server. With no other voter,
// more than there are: the owner proves itself through its Lease alone.
func ConfirmationsNeeded(otherVoters int) int {
	return otherVoters/2 + 1
}

// ReportsNeeded is how many of an owner's other voters must report it
// unheard before its peers prove nothing any more: those left are too few
// to confirm it. None when it has no other voter.
func ReportsNeeded(otherVoters int) int {
	return otherVoters - ConfirmationsNeeded(otherVoters) + 1
}
