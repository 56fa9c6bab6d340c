// Package heartbeat carries a node's liveness over the two channels of
// docs/architecture.md ("Heartbeats"), as Heartbeat's several media did:
//
//   - LeaseRenewer renews the node Lease webfarm-node-<node> through the API
//     server every keepalive. The controller watches it.
//   - Peers sends and receives authenticated UDP heartbeats between agents
//     (port 7694 by default, agent.DefaultPeerPort). Only agents use them: an
//     owner cut off from the API server keeps its address while every other
//     candidate is heard saying it neither holds the address nor saw a later
//     epoch (agent/ownership reads them through Peers.View).
//
// # Peer heartbeats
//
// A heartbeat lists one Claim per failover IP the sender knows: whether it
// holds the address, and the owner and epoch it last saw in the FailoverIP
// status. A peer counts as heard for an address only through heartbeats that
// carry a claim for it, so that the loss of one datagram of a heartbeat
// split in several can never make a holder look alive but silent about the
// address. Every time in a View is the receiver's own clock: clocks of
// different machines are never compared.
//
// Each heartbeat also acks the latest heartbeat its sender accepted from
// the receiver (that boot's nonce and sequence number, and how long ago it
// arrived, which times the round trip: OnRoundTrip). The receiver knows
// when it sent that one, so a report's Confirmed time is when the receiver
// asked, not when the answer arrived: a delayed or replayed datagram can
// only shorten a proof built on it. A heartbeat that confirms the
// receiver's ownership (not holding, seeing the receiver as owner) is a
// promise, recorded through Promises before it is sent.
//
// Peers accepts datagrams only from the members of SetMembership, each
// from its own address, and keeps claims only about the failover IPs it
// names; it forgets departed members and deleted failover IPs, so what it
// keeps is bounded by the cluster and not by what senders say.
//
// Wire format (version 3, see wire.go): a binary message of at most
// MaxDatagramSize bytes, so that it is never fragmented, signed by its
// sender's own Ed25519 key (Identity), then authenticated with HMAC-SHA256
// under the shared key of the peer Secret. A receiver checks the MAC first
// (cheap: strangers cost little), then that the sender is a member at its
// address, then the signature with the keys the sender publishes in its
// FrontNode status (SetPeerKeys): a front cannot speak for another. Names
// and numbers are validated after authentication, and the decoder refuses
// any datagram it cannot read whole without panicking (FuzzDecode). A
// datagram of another version is refused and counted, never parsed.
//
// # Replay protection
//
// Every agent draws a random 128-bit boot nonce when it starts and numbers
// its datagrams from 1 upwards. A receiver accepts, per sender node, the
// messages of one nonce at a time, each with a sequence number above the
// last one it accepted: a replay within a boot is refused by its number.
//
// Sender timestamps cannot fence replays across boots, since clocks differ,
// so a new nonce must prove it is live: the receiver answers the first
// heartbeat of an unknown nonce with a challenge, a random 128-bit value
// drawn for that nonce, and uses nothing of that heartbeat. The sender
// answers a challenge addressed to its node and its current nonce with an
// empty heartbeat that echoes it; the receiver then adopts the new nonce,
// and drops every challenge it had pending. A recording of an older boot, or
// of an older handshake, cannot echo a challenge drawn after it was made, so
// it is refused — also after the receiver restarts, since its challenges are
// new then too. A restarted sender is thus heard again one round trip after
// its first heartbeat, and its claims from the heartbeat that answering
// signals (Answered: the agent sends at once, once a second per peer at
// most) rather than a keepalive later.
//
// A sender silenced for resyncEvery while its datagrams are refused as
// replays (say a datagram forged with its own key, numbered far ahead) is
// challenged again on its current nonce; its answer carries its current
// number, which the receiver adopts. Only the live boot can answer, and no
// recording is numbered above that answer.
//
// Challenges are authenticated like heartbeats and answered only when they
// name the receiver's current nonce; each datagram draws at most one small
// reply, so the exchange amplifies nothing. A receiver keeps at most four
// pending challenges per sender, the oldest dropped first.
//
// What this does not stop: an attacker on the path can drop or delay
// datagrams (not forge or replay them); a delay cannot extend a proof (the
// ack above).
//
// # Keys
//
// Without a shared key of at least MinKeyLen bytes and a signing key nothing
// is sent or accepted. After SetKey changes the shared key, the previous one
// is still accepted for KeyRotationGrace, while the other agents pick up the
// new Secret. A node's own key rotates through its FrontNode: the next key
// is published before it signs (Identity.Step); docs/failover-safety.md
// ("Peer identity") tells the whole story.
package heartbeat
