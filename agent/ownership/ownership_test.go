package ownership

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// t0 stands for a monotonic reading of this node's clock.
var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// timing: deadtime 2s, guard 500ms, so a proof of liveness lasts 1.5s.
var timing = Timing{Keepalive: 500 * time.Millisecond, Deadtime: 2 * time.Second, Guard: 500 * time.Millisecond}

func ago(d time.Duration) time.Time { return t0.Add(-d) }

// heard is a peer heard d ago, claiming nothing, at our view of epoch 7,
// echoing a heartbeat we sent just before it answered (no delay).
func heard(node string, d time.Duration) Peer {
	return Peer{Node: node, LastHeard: ago(d), SeenOwner: "front1", SeenEpoch: 7, Confirmed: ago(d)}
}

func with(p Peer, edit func(*Peer)) Peer { edit(&p); return p }

// holder is front1 holding 10.0.0.100 at epoch 7, its Lease renewed 100ms
// ago, both other candidates heard 100ms ago.
func holder(edit ...func(*Input)) Input {
	in := Input{
		Node:    "front1",
		Address: "10.0.0.100",
		Status: Status{Owner: "front1", Epoch: 7, PreviousOwner: "front2",
			Candidates: []string{"front1", "front2", "front3"}, Voters: []string{"front1", "front2", "front3"}},
		Timing:       timing,
		Memory:       Memory{Holding: true, HeldEpoch: 7},
		LastAPIProof: ago(100 * time.Millisecond),
		Peers:        []Peer{heard("front2", 100*time.Millisecond), heard("front3", 100*time.Millisecond)},
		Now:          t0,
	}
	for _, e := range edit {
		e(&in)
	}
	return in
}

// newOwner is front2, just made owner of epoch 8 after front1, holding
// nothing, Lease fresh, front1 and front3 heard 100ms ago claiming nothing.
func newOwner(edit ...func(*Input)) Input {
	in := Input{
		Node:    "front2",
		Address: "10.0.0.100",
		Status: Status{Owner: "front2", Epoch: 8, PreviousOwner: "front1",
			Candidates: []string{"front1", "front2", "front3"}},
		Timing:       timing,
		LastAPIProof: ago(100 * time.Millisecond),
		Peers: []Peer{
			{Node: "front1", LastHeard: ago(100 * time.Millisecond), SeenOwner: "front1", SeenEpoch: 7},
			{Node: "front3", LastHeard: ago(100 * time.Millisecond), SeenOwner: "front2", SeenEpoch: 8},
		},
		Now: t0,
	}
	for _, e := range edit {
		e(&in)
	}
	return in
}

func staleLease(in *Input) { in.LastAPIProof = ago(3 * time.Second) }
func noLease(in *Input)    { in.LastAPIProof = time.Time{} }
func peers(p ...Peer) func(*Input) {
	return func(in *Input) { in.Peers = p }
}

// neverHeardFront1 is a new owner that never heard the previous owner.
func neverHeardFront1(in *Input) { in.Peers = in.Peers[1:] }

// lastWordClaim is a previous owner whose last heartbeat, ago, claimed the
// address: it died or was cut off then.
func lastWordClaim(ago_ time.Duration) func(*Input) {
	return func(in *Input) { in.Peers[0].LastHeard, in.Peers[0].LastClaimed = ago(ago_), ago(ago_) }
}

func waitingFor(d time.Duration) func(*Input) {
	return func(in *Input) { in.Memory.WaitingEpoch, in.Memory.WaitingSince = in.Status.Epoch, ago(d) }
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name   string
		in     Input
		want   Action
		epoch  int64
		reason string // a substring of the reason
	}{
		// The owner: Lease fresh/stale × peers heard/not heard × epochs.
		{name: "lease fresh, peers heard", in: holder(), want: Hold, epoch: 7},
		{name: "lease fresh, peers never heard", in: holder(peers()), want: Hold, epoch: 7},
		{name: "lease fresh, a peer silent", in: holder(peers(heard("front2", 100*time.Millisecond), heard("front3", 5*time.Second))), want: Hold, epoch: 7},
		{name: "lease stale, every peer heard and claiming nothing: API outage, keep serving",
			in: holder(staleLease), want: Hold, epoch: 7},
		{name: "lease never renewed, every peer heard", in: holder(noLease), want: Hold, epoch: 7},
		{name: "lease stale, a peer silent for deadtime-guard",
			in:   holder(staleLease, peers(heard("front2", 100*time.Millisecond), heard("front3", 1500*time.Millisecond))),
			want: Fence, epoch: 7, reason: "has had no proof through the API server for 3s and has no confirmation from front3 for a heartbeat sent within 1.5s"},
		{name: "lease stale, a peer's report arrived just now but echoes a heartbeat sent deadtime-guard ago: a delay does not extend the proof",
			in: holder(staleLease, peers(heard("front2", 100*time.Millisecond),
				with(heard("front3", 0), func(p *Peer) { p.Confirmed = ago(1500 * time.Millisecond) }))),
			want: Fence, epoch: 7, reason: "has no confirmation from front3"},
		{name: "lease stale, a peer's report echoes no heartbeat of ours",
			in:   holder(staleLease, peers(heard("front2", 100*time.Millisecond), with(heard("front3", 0), func(p *Peer) { p.Confirmed = time.Time{} }))),
			want: Fence, epoch: 7, reason: "front3 echoed none of our heartbeats"},
		{name: "lease stale, a peer lags at an older epoch: it confirms nothing",
			in:   holder(staleLease, peers(heard("front2", 100*time.Millisecond), with(heard("front3", 0), func(p *Peer) { p.SeenEpoch = 6 }))),
			want: Fence, epoch: 7, reason: "front3 reports epoch 6 owned by front1"},
		{name: "lease stale, peers never heard", in: holder(staleLease, peers()), want: Fence, epoch: 7, reason: "never heard front2"},
		{name: "lease never renewed, peers never heard", in: holder(noLease, peers()), want: Fence, epoch: 7, reason: "has no proof through the API server yet"},
		{name: "lease stale, a peer claims the address",
			in: holder(staleLease, peers(heard("front2", 100*time.Millisecond),
				with(heard("front3", 100*time.Millisecond), func(p *Peer) { p.LastClaimed = p.LastHeard; p.SeenEpoch, p.SeenOwner = 6, "front3" }))),
			want: Fence, epoch: 7, reason: "front3 claims 10.0.0.100"},
		{name: "lease fresh, a peer still claims at an older epoch: it fences itself, we keep the address",
			in: holder(peers(heard("front2", 100*time.Millisecond),
				with(heard("front3", 100*time.Millisecond), func(p *Peer) { p.LastClaimed = p.LastHeard; p.SeenEpoch, p.SeenOwner = 6, "front3" }))),
			want: Hold, epoch: 7},
		{name: "lease fresh, a peer saw an older epoch", in: holder(peers(with(heard("front2", time.Second), func(p *Peer) { p.SeenEpoch = 5 }))), want: Hold, epoch: 7},
		{name: "lease fresh, a peer saw a later epoch",
			in:   holder(peers(heard("front2", 100*time.Millisecond), with(heard("front3", 100*time.Millisecond), func(p *Peer) { p.SeenOwner, p.SeenEpoch = "front3", 8 }))),
			want: Fence, epoch: 7, reason: "front3 reports epoch 8 owned by front3"},
		{name: "lease stale, peers heard, one saw a later epoch",
			in:   holder(staleLease, peers(with(heard("front2", 100*time.Millisecond), func(p *Peer) { p.SeenOwner, p.SeenEpoch = "front2", 8 }), heard("front3", 100*time.Millisecond))),
			want: Fence, epoch: 7, reason: "front2 reports epoch 8"},
		{name: "a peer saw a later epoch, heard just under deadtime ago",
			in:   holder(peers(with(heard("front2", 1900*time.Millisecond), func(p *Peer) { p.SeenOwner, p.SeenEpoch = "front2", 8 }))),
			want: Fence, epoch: 7, reason: "front2 reports epoch 8"},
		{name: "a later epoch reported deadtime ago or more counts no more: a forged or replayed value blocks nothing for long",
			in:   holder(peers(with(heard("front2", 2*time.Second), func(p *Peer) { p.SeenOwner, p.SeenEpoch = "front2", 1<<62 }))),
			want: Hold, epoch: 7},
		{name: "a peer saw a later epoch owned by us: our status is stale all the same",
			in:   holder(peers(with(heard("front2", 100*time.Millisecond), func(p *Peer) { p.SeenEpoch = 9 }))),
			want: Fence, epoch: 7, reason: "epoch 9 owned by front1"},
		{name: "a peer saw another owner of the same epoch",
			in:   holder(peers(with(heard("front2", 100*time.Millisecond), func(p *Peer) { p.SeenOwner = "front2" }))),
			want: Fence, epoch: 7, reason: "epoch 7 owned by front2"},
		{name: "a peer that reported nothing about this address", in: holder(peers(with(heard("front2", 100*time.Millisecond), func(p *Peer) { p.SeenOwner, p.SeenEpoch = "", 0 }), heard("front3", 100*time.Millisecond))), want: Hold, epoch: 7},
		{name: "a heard non-candidate saw a later epoch",
			in:   holder(peers(heard("front2", 100*time.Millisecond), heard("front3", 100*time.Millisecond), with(heard("front4", 100*time.Millisecond), func(p *Peer) { p.SeenOwner, p.SeenEpoch = "front4", 8 }))),
			want: Fence, epoch: 7, reason: "front4 reports epoch 8"},

		// An owner with no other candidate.
		{name: "single candidate, lease fresh", in: holder(func(in *Input) { in.Status.Candidates = []string{"front1"}; in.Peers = nil }), want: Hold, epoch: 7},
		{name: "single candidate losing the API",
			in:   holder(staleLease, func(in *Input) { in.Status.Candidates, in.Status.Voters = []string{"front1"}, []string{"front1"} }),
			want: Fence, epoch: 7, reason: "has had no proof through the API server for 3s and has no other voter to confirm it"},
		{name: "no candidate list at all, losing the API", in: holder(staleLease, func(in *Input) { in.Status.Candidates, in.Status.Voters = nil, nil }), want: Fence, epoch: 7},
		{name: "lease renewed exactly deadtime-guard ago, no peers: the proof ran out",
			in:   holder(peers(), func(in *Input) { in.LastAPIProof = ago(1500 * time.Millisecond) }),
			want: Fence, epoch: 7},

		// Epochs this node holds at.
		{name: "holds at the previous epoch, renewed to us", in: holder(func(in *Input) { in.Status.Epoch, in.Status.PreviousOwner = 8, "front1"; in.Peers = nil }), want: Hold, epoch: 8},
		{name: "holds at the previous epoch, renewed to us with its previous owner carried over (not yet seen holding)",
			in: holder(func(in *Input) { in.Status.Epoch, in.Status.PreviousOwner = 8, "front2"; in.Peers = nil }), want: Hold, epoch: 8},
		{name: "holds at an older epoch that another node owned since",
			in:   holder(func(in *Input) { in.Status.Epoch, in.Status.PreviousOwner = 9, "front2"; in.Peers = nil }),
			want: Fence, epoch: 7, reason: "held at epoch 7"},
		{name: "holds at an epoch later than the status", in: holder(func(in *Input) { in.Memory.HeldEpoch = 8 }), want: Fence, epoch: 8, reason: "status epoch 7 is older"},
		{name: "gave up this epoch by fencing, lease fresh again",
			in: holder(func(in *Input) {
				in.Memory = Memory{GaveUp: Fence, GaveUpEpoch: 7, GaveUpReason: "could not renew its Lease", GaveUpCause: ProofExpired}
			}),
			want: Fence, epoch: 7, reason: "holding again needs a new epoch"},
		{name: "released this epoch, the request withdrawn",
			in:   holder(func(in *Input) { in.Memory = Memory{GaveUp: Release, GaveUpEpoch: 7, GaveUpReason: "released"} }),
			want: Release, epoch: 7},
		{name: "fenced an older epoch, owner again at a new one, released", in: holder(func(in *Input) {
			in.Memory = Memory{GaveUp: Fence, GaveUpEpoch: 7}
			in.Status.Epoch, in.Status.PreviousOwner, in.Status.PreviousOwnerReleased = 8, "front1", true
			in.Peers = nil
		}), want: Hold, epoch: 8},

		// Planned hand-off and other owners.
		{name: "release requested while holding", in: holder(func(in *Input) { in.Status.ReleaseRequested = true }), want: Release, epoch: 7},
		{name: "release requested while waiting", in: newOwner(func(in *Input) { in.Status.ReleaseRequested = true }), want: Release, epoch: 8},
		{name: "another node owns it, we hold it", in: holder(func(in *Input) { in.Status.Owner, in.Status.Epoch = "front2", 8 }), want: NotOwner, epoch: 8, reason: "front2 owns 10.0.0.100 at epoch 8"},
		{name: "nobody owns it", in: holder(func(in *Input) { in.Status.Owner = "" }), want: NotOwner, epoch: 7, reason: "no node owns"},
		{name: "owner at epoch 0", in: newOwner(func(in *Input) { in.Status.Epoch = 0 }), want: Wait, epoch: 0, reason: "epoch 0"},

		// A new owner after a hard loss.
		{name: "new owner that never heard the previous owner listens deadtime", in: newOwner(neverHeardFront1), want: Wait, epoch: 8, reason: "listening 2s more before announcing 10.0.0.100 (previous owner front1"},
		{name: "new owner that never heard the previous owner, waiting for 1.2s", in: newOwner(neverHeardFront1, waitingFor(1200*time.Millisecond)), want: Wait, epoch: 8, reason: "listening 800ms more"},
		{name: "a wait recorded for an older epoch starts again", in: newOwner(neverHeardFront1, func(in *Input) { in.Memory.WaitingEpoch, in.Memory.WaitingSince = 7, ago(time.Hour) }), want: Wait, epoch: 8, reason: "listening 2s more"},
		{name: "new owner that never heard the previous owner waited deadtime", in: newOwner(neverHeardFront1, waitingFor(2*time.Second)), want: Hold, epoch: 8},
		{name: "new owner heard the previous owner let it go, promised nothing: announces at once", in: newOwner(), want: Hold, epoch: 8},
		{name: "new owner confirmed the previous owner's heartbeat that arrived 1s ago: keeps its promise",
			in:   newOwner(func(in *Input) { in.Promised = ago(time.Second) }),
			want: Wait, epoch: 8, reason: "keeping for 500ms more the promise made to front1"},
		{name: "new owner's promise ran out deadtime-guard after the heartbeat it confirmed",
			in:   newOwner(func(in *Input) { in.Promised = ago(1500 * time.Millisecond) }),
			want: Hold, epoch: 8},
		{name: "previous owner released: the promise does not count",
			in:   newOwner(func(in *Input) { in.Status.PreviousOwnerReleased, in.Promised = true, ago(10*time.Millisecond) }),
			want: Hold, epoch: 8},
		{name: "hard loss: last claim and last confirmed heartbeat 2.3s ago, just named owner: announces at once",
			in:   newOwner(lastWordClaim(2300*time.Millisecond), func(in *Input) { in.Promised = ago(2300 * time.Millisecond) }),
			want: Hold, epoch: 8},
		{name: "hard loss: last claim 1.8s ago: waits for deadtime since it",
			in:   newOwner(lastWordClaim(1800*time.Millisecond), func(in *Input) { in.Promised = ago(1800 * time.Millisecond) }),
			want: Wait, epoch: 8, reason: "waiting 200ms more for front1 to stop claiming"},
		{name: "previous owner heard too long ago to vouch for its silence: deadtime",
			in:   newOwner(lastWordClaim(5*time.Second), waitingFor(500*time.Millisecond)),
			want: Wait, epoch: 8, reason: "listening 1.5s more"},
		{name: "new owner waited long, the previous owner claimed 800ms ago",
			in:   newOwner(waitingFor(time.Minute), func(in *Input) { in.Peers[0].LastClaimed = ago(800 * time.Millisecond) }),
			want: Wait, epoch: 8, reason: "waiting 1.2s more for front1 to stop claiming 10.0.0.100"},
		{name: "new owner waited long, the previous owner claimed deadtime ago",
			in:   newOwner(waitingFor(time.Minute), func(in *Input) { in.Peers[0].LastClaimed = ago(2 * time.Second) }),
			want: Hold, epoch: 8},
		{name: "deadtime cut from 10s: the previous owner may hold 10s after its last claim",
			in: newOwner(waitingFor(time.Minute), func(in *Input) {
				in.Status.FencingDeadtime = 10 * time.Second
				in.Peers[0].LastHeard, in.Peers[0].LastClaimed = ago(2300*time.Millisecond), ago(2300*time.Millisecond)
			}),
			want: Wait, epoch: 8, reason: "waiting 7.7s more for front1 to stop claiming"},
		{name: "deadtime cut from 10s: a new owner that never heard the previous one listens 10s",
			in:   newOwner(neverHeardFront1, waitingFor(2*time.Second), func(in *Input) { in.Status.FencingDeadtime = 10 * time.Second }),
			want: Wait, epoch: 8, reason: "listening 8s more"},
		{name: "new owner waited long, a third node claims it", in: newOwner(waitingFor(time.Minute), func(in *Input) { in.Peers[1].LastClaimed = ago(time.Second) }),
			want: Wait, epoch: 8, reason: "for front3 to stop claiming"},
		{name: "previous owner released: announce at once", in: newOwner(func(in *Input) { in.Status.PreviousOwnerReleased = true }), want: Hold, epoch: 8},
		{name: "previous owner released: its last claim does not count",
			in: newOwner(func(in *Input) {
				in.Status.PreviousOwnerReleased = true
				in.Peers[0].LastClaimed = ago(10 * time.Millisecond)
			}),
			want: Hold, epoch: 8},
		{name: "previous owner released, a third node claims it",
			in: newOwner(func(in *Input) {
				in.Status.PreviousOwnerReleased = true
				in.Peers[1].LastClaimed = ago(10 * time.Millisecond)
			}),
			want: Wait, epoch: 8, reason: "front3 to stop claiming"},
		{name: "new owner, lease stale, peers heard and confirming", in: newOwner(staleLease, waitingFor(time.Minute), func(in *Input) {
			for i := range in.Peers {
				in.Peers[i].SeenOwner, in.Peers[i].SeenEpoch, in.Peers[i].Confirmed = "front2", 8, in.Peers[i].LastHeard
			}
		}), want: Hold, epoch: 8},
		{name: "new owner, lease stale, the previous owner has not seen the new epoch",
			in:   newOwner(staleLease, waitingFor(time.Minute)),
			want: Wait, epoch: 8, reason: "front1 reports epoch 7 owned by front1"},
		{name: "new owner, lease stale, peers silent: cannot prove it is alive",
			in:   newOwner(staleLease, waitingFor(time.Minute), peers()),
			want: Wait, epoch: 8, reason: "has had no proof through the API server for 3s and never heard front1"},
		{name: "new owner, a peer saw a later epoch", in: newOwner(waitingFor(time.Minute), func(in *Input) { in.Peers[1].SeenEpoch, in.Peers[1].SeenOwner = 9, "front3" }),
			want: Wait, epoch: 8, reason: "front3 reports epoch 9"},
		{name: "previous owner released, a peer saw a later epoch", in: newOwner(func(in *Input) {
			in.Status.PreviousOwnerReleased = true
			in.Peers[0].SeenEpoch, in.Peers[0].SeenOwner = 9, "front1"
		}), want: Wait, epoch: 8, reason: "front1 reports epoch 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.in)
			if got.Action != tt.want || got.Epoch != tt.epoch {
				t.Fatalf("Decide() = %v, want %v at epoch %d", got, tt.want, tt.epoch)
			}
			if !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", got.Reason, tt.reason)
			}
			if (got.Action == Wait || got.Action == Fence) && got.Reason == "" {
				t.Errorf("%v gives no reason", got.Action)
			}
			if (got.Action == Fence) != (got.Cause != "") {
				t.Errorf("%v has cause %q: every fence, and only a fence, has one", got.Action, got.Cause)
			}
		})
	}
}

func TestDecideFenceCause(t *testing.T) {
	newerEpoch := peers(with(heard("front2", 100*time.Millisecond), func(p *Peer) { p.SeenEpoch = 9 }))
	tests := []struct {
		name string
		in   Input
		want FenceCause
	}{
		{name: "lease stale, peers never heard", in: holder(staleLease, peers()), want: ProofExpired},
		{name: "a peer saw a later epoch", in: holder(newerEpoch), want: NewerView},
		{name: "holds at an epoch later than the status", in: holder(func(in *Input) { in.Memory.HeldEpoch = 8 }), want: StatusRolledBack},
		{name: "another node owned an epoch since",
			in: holder(func(in *Input) { in.Status.Epoch, in.Status.PreviousOwner = 9, "front2"; in.Peers = nil }), want: Superseded},
		{name: "a fence remembered keeps its cause",
			in:   holder(func(in *Input) { in.Memory = Memory{GaveUp: Fence, GaveUpEpoch: 7, GaveUpCause: NewerView} }),
			want: NewerView},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.in)
			if got.Action != Fence || got.Cause != tt.want {
				t.Fatalf("Decide() = %v with cause %q, want a Fence for %q", got, got.Cause, tt.want)
			}
			if after := tt.in.Memory.After(got, t0); after.GaveUpCause != tt.want {
				t.Errorf("the memory after it keeps cause %q, want %q", after.GaveUpCause, tt.want)
			}
		})
	}
}

func TestDecideRecheckAfter(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		want time.Duration
	}{
		{name: "hold on the Lease: until it is deadtime-guard old", in: holder(peers()), want: 1400 * time.Millisecond},
		{name: "hold on peers only: until the oldest is deadtime-guard old",
			in:   holder(staleLease, peers(heard("front2", 200*time.Millisecond), heard("front3", time.Second))),
			want: 500 * time.Millisecond},
		{name: "hold on both: the later of the two", in: holder(peers(heard("front2", 0), heard("front3", 0))), want: 1500 * time.Millisecond},
		{name: "hold on peers: counted from the heartbeat they echoed, not their arrival",
			in:   holder(staleLease, peers(with(heard("front2", 0), func(p *Peer) { p.Confirmed = ago(time.Second) }), heard("front3", 0))),
			want: 500 * time.Millisecond},
		{name: "hold on a quorum of peers: until the quorum's shortest proof is deadtime-guard old",
			in: holder(staleLease, peers(heard("front2", 0), heard("front3", 200*time.Millisecond), heard("front4", time.Second)),
				func(in *Input) { in.Status.Voters = []string{"front1", "front2", "front3", "front4"} }),
			want: 1300 * time.Millisecond},
		{name: "wait for a promise", in: newOwner(func(in *Input) { in.Promised = ago(1200 * time.Millisecond) }), want: 300 * time.Millisecond},
		{name: "wait for a claim to age out", in: newOwner(waitingFor(time.Minute), func(in *Input) { in.Peers[0].LastClaimed = ago(800 * time.Millisecond) }), want: 1200 * time.Millisecond},
		{name: "wait, listening", in: newOwner(neverHeardFront1, waitingFor(500*time.Millisecond)), want: 1500 * time.Millisecond},
		{name: "wait on liveness: poll at keepalive", in: newOwner(staleLease, peers()), want: 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.in).RecheckAfter; got != tt.want {
				t.Errorf("RecheckAfter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecisionState(t *testing.T) {
	tests := []struct {
		action Action
		want   webfarmv1.VIPState
		report bool
	}{
		{Hold, webfarmv1.VIPHolding, true},
		{Wait, webfarmv1.VIPWaiting, true},
		{Release, webfarmv1.VIPReleased, true},
		{Fence, webfarmv1.VIPFenced, true},
		{Withdraw, webfarmv1.VIPOwnerUnheard, true},
		{NotOwner, "", false},
	}
	for _, tt := range tests {
		got, report := Decision{Action: tt.action}.State()
		if got != tt.want || report != tt.report {
			t.Errorf("%v.State() = %q, %v; want %q, %v", tt.action, got, report, tt.want, tt.report)
		}
		if announce := (Decision{Action: tt.action}).Announce(); announce != (tt.action == Hold) {
			t.Errorf("%v.Announce() = %v", tt.action, announce)
		}
	}
}

func TestMemoryAfter(t *testing.T) {
	later := t0.Add(time.Second)
	tests := []struct {
		name string
		m    Memory
		d    Decision
		want Memory
	}{
		{name: "hold", d: Decision{Action: Hold, Epoch: 7}, want: Memory{Holding: true, HeldEpoch: 7}},
		{name: "first wait starts the clock", d: Decision{Action: Wait, Epoch: 8}, want: Memory{WaitingEpoch: 8, WaitingSince: later}},
		{name: "a later wait keeps it", m: Memory{WaitingEpoch: 8, WaitingSince: t0}, d: Decision{Action: Wait, Epoch: 8}, want: Memory{WaitingEpoch: 8, WaitingSince: t0}},
		{name: "a wait for a new epoch restarts it", m: Memory{WaitingEpoch: 7, WaitingSince: t0}, d: Decision{Action: Wait, Epoch: 8}, want: Memory{WaitingEpoch: 8, WaitingSince: later}},
		{name: "fence", m: Memory{Holding: true, HeldEpoch: 7}, d: Decision{Action: Fence, Epoch: 7, Reason: "r"}, want: Memory{GaveUp: Fence, GaveUpEpoch: 7, GaveUpReason: "r"}},
		{name: "release", d: Decision{Action: Release, Epoch: 7, Reason: "r"}, want: Memory{GaveUp: Release, GaveUpEpoch: 7, GaveUpReason: "r"}},
		{name: "repeating a give-up keeps the first reason", m: Memory{GaveUp: Fence, GaveUpEpoch: 7, GaveUpReason: "first"},
			d: Decision{Action: Fence, Epoch: 7, Reason: "first; holding again needs a new epoch"}, want: Memory{GaveUp: Fence, GaveUpEpoch: 7, GaveUpReason: "first"}},
		{name: "not owner drops the address, remembers what it gave up", m: Memory{Holding: true, HeldEpoch: 9, GaveUp: Fence, GaveUpEpoch: 7},
			d: Decision{Action: NotOwner, Epoch: 10}, want: Memory{GaveUp: Fence, GaveUpEpoch: 7, ViewEpoch: 10, ViewSince: later}},
		{name: "not owner at the same epoch keeps when it first saw it", m: Memory{ViewEpoch: 10, ViewSince: t0},
			d: Decision{Action: NotOwner, Epoch: 10}, want: Memory{ViewEpoch: 10, ViewSince: t0}},
		{name: "a withdrawal keeps it too", m: Memory{ViewEpoch: 10, ViewSince: t0},
			d: Decision{Action: Withdraw, Epoch: 10}, want: Memory{ViewEpoch: 10, ViewSince: t0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.After(tt.d, later); got != tt.want {
				t.Errorf("After() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// voter is front2, a voter of front1's epoch 7, that has known the epoch
// for a minute and last confirmed front1 with a heartbeat heard d ago.
func voter(d time.Duration, edit ...func(*Input)) Input {
	in := Input{
		Node:    "front2",
		Address: "10.0.0.100",
		Status: Status{Owner: "front1", Epoch: 7, Candidates: []string{"front1", "front2", "front3"},
			Voters: []string{"front1", "front2", "front3"}},
		Timing:   timing,
		Memory:   Memory{ViewEpoch: 7, ViewSince: ago(time.Minute)},
		Promised: ago(d),
		Now:      t0,
	}
	for _, e := range edit {
		e(&in)
	}
	return in
}

// withdrawnOwner makes the status that of an owner taken away without a
// successor at the same epoch, its voters kept.
func withdrawnOwner(prev string) func(*Input) {
	return func(in *Input) { in.Status.Owner, in.Status.PreviousOwner = "", prev }
}

func TestDecideWithdrawal(t *testing.T) {
	tests := []struct {
		name    string
		in      Input
		want    Action
		recheck time.Duration
	}{
		{name: "the owner heard lately: vouch for it", in: voter(300 * time.Millisecond), want: NotOwner, recheck: 500 * time.Millisecond},
		{name: "its promise ran out, but not deadtime since: wait for guard more",
			in: voter(1600 * time.Millisecond), want: NotOwner, recheck: 400 * time.Millisecond},
		{name: "not heard for deadtime: withdraw", in: voter(2 * time.Second), want: Withdraw, recheck: 500 * time.Millisecond},
		{name: "an epoch known for less than deadtime: wait for the rest",
			in:   voter(time.Minute, func(in *Input) { in.Memory.ViewSince = ago(1700 * time.Millisecond) }),
			want: NotOwner, recheck: 300 * time.Millisecond},
		{name: "an epoch first seen now: a full deadtime",
			in:   voter(time.Minute, func(in *Input) { in.Memory = Memory{ViewEpoch: 6, ViewSince: ago(time.Minute)} }),
			want: NotOwner, recheck: 500 * time.Millisecond},
		{name: "an agent started 2s ago: its handshakes may have taken two keepalives, so deadtime after them",
			in:   voter(2*time.Second, func(in *Input) { in.Started = ago(2 * time.Second) }),
			want: NotOwner, recheck: 500 * time.Millisecond},
		{name: "an agent started deadtime and two keepalives ago withdraws",
			in:   voter(3*time.Second, func(in *Input) { in.Started = ago(3 * time.Second) }),
			want: Withdraw, recheck: 500 * time.Millisecond},
		{name: "the previous owner used a longer deadtime: listen that long",
			in:   voter(2500*time.Millisecond, func(in *Input) { in.Status.FencingDeadtime = 3 * time.Second }),
			want: NotOwner, recheck: 500 * time.Millisecond},
		{name: "withdrawn from this epoch: keep reporting it", in: voter(0, func(in *Input) { in.Withdrawn = 7 }), want: Withdraw, recheck: 500 * time.Millisecond},
		{name: "withdrawn from an older epoch only: vouch at this one", in: voter(0, func(in *Input) { in.Withdrawn = 6 }), want: NotOwner, recheck: 500 * time.Millisecond},
		{name: "not a voter of this epoch: never withdraws",
			in:   voter(time.Minute, func(in *Input) { in.Status.Voters = []string{"front1", "front3"} }),
			want: NotOwner, recheck: 500 * time.Millisecond},
		{name: "a status without voters (older controller): never withdraws",
			in:   voter(time.Minute, func(in *Input) { in.Status.Voters = nil }),
			want: NotOwner, recheck: 500 * time.Millisecond},
		{name: "no owner: nothing to withdraw from",
			in:   voter(time.Minute, func(in *Input) { in.Status.Owner = "" }),
			want: NotOwner, recheck: 500 * time.Millisecond},
		{name: "the owner withdrawn without a successor (deleted): its voter withdraws deadtime after vouching",
			in:   voter(2*time.Second, withdrawnOwner("front1")),
			want: Withdraw, recheck: 500 * time.Millisecond},
		{name: "the owner withdrawn without a successor, vouched for lately: not yet",
			in:   voter(300*time.Millisecond, withdrawnOwner("front1")),
			want: NotOwner, recheck: 500 * time.Millisecond},
		{name: "the owner withdrawn, and known to have removed the address: nothing to withdraw from",
			in:   voter(time.Minute, withdrawnOwner("front1"), func(in *Input) { in.Status.PreviousOwnerReleased = true }),
			want: NotOwner, recheck: 500 * time.Millisecond},
		{name: "the withdrawn owner itself does not withdraw: it removes the address",
			in:   voter(time.Minute, withdrawnOwner("front2")),
			want: NotOwner, recheck: 500 * time.Millisecond},
		{name: "a node that holds the address does not withdraw: it removes it",
			in:   voter(time.Minute, withdrawnOwner("front1"), func(in *Input) { in.Memory.Holding = true }),
			want: NotOwner, recheck: 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.in)
			if got.Action != tt.want || got.Epoch != 7 || got.RecheckAfter != tt.recheck {
				t.Fatalf("Decide() = %v, recheck %v; want %v at epoch 7, recheck %v", got, got.RecheckAfter, tt.want, tt.recheck)
			}
		})
	}
}

func TestDecideVoters(t *testing.T) {
	five := []string{"front1", "front2", "front3", "front4", "front5"}
	withVoters := func(v ...string) func(*Input) { return func(in *Input) { in.Status.Voters = v } }
	tests := []struct {
		name   string
		in     Input
		want   Action
		reason string
	}{
		{name: "the voters, not the candidates, vouch: front3 joined after the epoch began",
			in:   holder(staleLease, withVoters("front1", "front2"), peers(heard("front2", 100*time.Millisecond))),
			want: Hold},
		{name: "a voter that is no longer a candidate must still vouch",
			in: holder(staleLease, withVoters("front1", "front2", "front4"),
				peers(heard("front2", 100*time.Millisecond), heard("front3", 100*time.Millisecond))),
			want: Fence, reason: "never heard front4"},
		{name: "a voter that withdrew vouches for nothing",
			in: holder(staleLease, withVoters("front1", "front2", "front3"),
				peers(heard("front2", 100*time.Millisecond), with(heard("front3", 100*time.Millisecond), func(p *Peer) { p.Withdrawn = true }))),
			want: Fence, reason: "front3 no longer vouches for epoch 7"},
		{name: "after a hand-off, the front that released confirms although it claimed the address moments before",
			in: holder(staleLease, func(in *Input) { in.Status.PreviousOwnerReleased = true },
				peers(with(heard("front2", 100*time.Millisecond), func(p *Peer) { p.LastClaimed = ago(200 * time.Millisecond) }), heard("front3", 100*time.Millisecond))),
			want: Hold},
		{name: "a claim by a front that released nothing: no confirmation from it",
			in: holder(staleLease,
				peers(with(heard("front2", 100*time.Millisecond), func(p *Peer) { p.LastClaimed = ago(200 * time.Millisecond) }), heard("front3", 100*time.Millisecond))),
			want: Fence, reason: "front2 claims 10.0.0.100"},
		{name: "an owner alone among the voters holds by its Lease only",
			in: holder(staleLease, withVoters("front1")), want: Fence, reason: "has no other voter"},
		{name: "finding 6: one dead voter of five leaves a majority that vouches",
			in:   holder(staleLease, withVoters(five...), peers(heard("front2", 100*time.Millisecond), heard("front3", 100*time.Millisecond), heard("front4", 100*time.Millisecond))),
			want: Hold},
		{name: "two dead voters of five leave no majority",
			in:   holder(staleLease, withVoters(five...), peers(heard("front2", 100*time.Millisecond), heard("front3", 100*time.Millisecond))),
			want: Fence, reason: "2 of 4 other voters confirm it, 3 needed"},
		{name: "three voters: the owner needs both others",
			in: holder(staleLease, peers(heard("front2", 100*time.Millisecond))), want: Fence, reason: "1 of 2 other voters confirm it, 2 needed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.in)
			if got.Action != tt.want || !strings.Contains(got.Reason, tt.reason) {
				t.Fatalf("Decide() = %v, want %v with %q", got, tt.want, tt.reason)
			}
		})
	}
}

func TestDecideNeedsLease(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		want bool
	}{
		{name: "every voter confirmed within half a keepalive: quiet", in: holder(peers(heard("front2", 200*time.Millisecond), heard("front3", 0))), want: false},
		{name: "a confirmation a keepalive and a half old: renew", in: holder(peers(heard("front2", 750*time.Millisecond), heard("front3", 0))), want: true},
		{name: "a voter unheard: renew", in: holder(peers(heard("front2", 0))), want: true},
		{name: "a new owner waiting, not yet confirmed: renew", in: newOwner(func(in *Input) { in.Promised = ago(1200 * time.Millisecond) }), want: true},
		{name: "a node that owns nothing: never", in: voter(0), want: false},
		{name: "a quorum that vouches while a voter is dead: renew, so that the controller leaves it out",
			in: holder(peers(heard("front2", 0), heard("front3", 0), heard("front4", 0)), func(in *Input) { in.Status.Voters = []string{"front1", "front2", "front3", "front4", "front5"} }), want: true},
		{name: "a candidate that just withdrew may be named next: renew", in: voter(2100 * time.Millisecond), want: true},
		{name: "a candidate that withdrew long ago: quiet", in: voter(time.Minute), want: false},
		{name: "a voter that withdrew but is no candidate is never named: quiet",
			in: voter(2100*time.Millisecond, func(in *Input) { in.Status.Candidates = []string{"front1", "front3"} }), want: false},
		{name: "a candidate that is no voter: renew, so that the controller renews the epoch with it",
			in: holder(peers(heard("front2", 200*time.Millisecond), heard("front3", 0)), func(in *Input) { in.Status.Voters = []string{"front1", "front2"} }), want: true},
		{name: "a status without voters (older controller) moves on the Lease alone: renew",
			in: holder(peers(heard("front2", 0), heard("front3", 0)), func(in *Input) { in.Status.Voters = nil }), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.in); got.NeedsLease != tt.want {
				t.Errorf("Decide() = %v, NeedsLease %v, want %v", got, got.NeedsLease, tt.want)
			}
		})
	}
}

// TestTimingOf: agents act on the timing the controller published in the
// status, and on the spec only under a controller that publishes none.
func TestTimingOf(t *testing.T) {
	d := func(v time.Duration) metav1.Duration { return metav1.Duration{Duration: v} }
	fip := &webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Generation: 4},
		Spec: webfarmv1.FailoverIPSpec{Keepalive: d(100 * time.Millisecond), Deadtime: d(300 * time.Millisecond), Guard: d(50 * time.Millisecond)}}
	if got, gen := TimingOf(fip); got != (Timing{100 * time.Millisecond, 300 * time.Millisecond, 50 * time.Millisecond}) || gen != 4 {
		t.Errorf("no published timing: TimingOf = %+v at generation %d, want the spec's at 4", got, gen)
	}
	fip.Status.Timing = &webfarmv1.AgentTiming{Keepalive: d(time.Second), Deadtime: d(5 * time.Second), Guard: d(time.Second), Generation: 3}
	if got, gen := TimingOf(fip); got != (Timing{time.Second, 5 * time.Second, time.Second}) || gen != 3 {
		t.Errorf("published timing: TimingOf = %+v at generation %d, want the status's at 3", got, gen)
	}
}

func TestNextPass(t *testing.T) {
	const tick = 100 * time.Millisecond
	at := func(ds ...time.Duration) []Decision {
		var out []Decision
		for _, d := range ds {
			out = append(out, Decision{RecheckAfter: d})
		}
		return out
	}
	cases := []struct {
		name string
		ds   []Decision
		want time.Duration
	}{
		{"no decision: a tick", nil, tick},
		{"a withdrawal due in 30ms", at(200*time.Millisecond, 30*time.Millisecond), 30 * time.Millisecond},
		{"nothing due within a tick", at(450 * time.Millisecond), tick},
		{"due at once: not sooner than MinRecheck", at(time.Millisecond), MinRecheck},
		{"no recheck asked", at(0, -time.Second), tick},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := NextPass(tick, tc.ds...); got != tc.want {
				t.Errorf("NextPass = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestDecideAwaitsProof: an owner that lacks only a proof of liveness
// claims the address so that its voters confirm it, for two listening
// deadtimes at most; one that waits for anything else claims nothing.
func TestDecideAwaitsProof(t *testing.T) {
	tests := []struct {
		name       string
		in         Input
		wantAction Action
		want       bool
	}{
		{name: "a new owner with neither Lease nor confirmation: claims, to be confirmed", in: newOwner(noLease), wantAction: Wait, want: true},
		{name: "a new owner whose Lease proves it: holds", in: newOwner(), wantAction: Hold, want: false},
		{name: "the previous owner claimed the address a second ago: waits without claiming",
			in: newOwner(noLease, lastWordClaim(time.Second)), wantAction: Wait, want: false},
		{name: "waiting at this epoch for just under two deadtimes: still claims", in: newOwner(noLease, waitingFor(3900*time.Millisecond)), wantAction: Wait, want: true},
		{name: "waiting at this epoch for two deadtimes: stops claiming, so that its voters withdraw",
			in: newOwner(noLease, waitingFor(4*time.Second)), wantAction: Wait, want: false},
		{name: "a holder whose proof ran out fences", in: holder(staleLease, peers()), wantAction: Fence, want: false},
		{name: "a new owner whose Lease proof lasts 50ms more, less than a keepalive: claims rather than holds",
			in: newOwner(func(in *Input) { in.LastAPIProof = ago(1450 * time.Millisecond) }), wantAction: Wait, want: true},
		{name: "a new owner whose Lease proof lasts a keepalive and more: holds",
			in: newOwner(func(in *Input) { in.LastAPIProof = ago(900 * time.Millisecond) }), wantAction: Hold, want: false},
		{name: "a short proof after two deadtimes of waiting: holds on it, as claiming no longer may",
			in: newOwner(waitingFor(4*time.Second), func(in *Input) { in.LastAPIProof = ago(1450 * time.Millisecond) }), wantAction: Hold, want: false},
		{name: "a holder on a short proof keeps holding", in: holder(func(in *Input) { in.LastAPIProof = ago(1450 * time.Millisecond); in.Peers = nil }), wantAction: Hold, want: false},
		{name: "a voter claims nothing", in: voter(0), wantAction: NotOwner, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.in)
			if got.Action != tt.wantAction || got.AwaitsProof != tt.want {
				t.Errorf("Decide() = %v, AwaitsProof %v; want %v, AwaitsProof %v", got, got.AwaitsProof, tt.wantAction, tt.want)
			}
		})
	}
}

// TestClaimsForProof: a claim made to be proved alive never outlives the
// ownership it was made for.
func TestClaimsForProof(t *testing.T) {
	awaiting := Decision{Action: Wait, Epoch: 8, AwaitsProof: true}
	tests := []struct {
		name string
		d    Decision
		st   Status
		want bool
	}{
		{name: "still the owner at that epoch", d: awaiting, st: Status{Owner: "front2", Epoch: 8}, want: true},
		{name: "another owner since", d: awaiting, st: Status{Owner: "front3", Epoch: 9}, want: false},
		{name: "owner again at a later epoch, not decided yet", d: awaiting, st: Status{Owner: "front2", Epoch: 9}, want: false},
		{name: "a wait for anything else", d: Decision{Action: Wait, Epoch: 8}, st: Status{Owner: "front2", Epoch: 8}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ClaimsForProof(tt.d, tt.st, "front2"); got != tt.want {
				t.Errorf("ClaimsForProof() = %v, want %v", got, tt.want)
			}
		})
	}
}
