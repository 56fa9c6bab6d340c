package controllers

import (
	"slices"
	"testing"
	"time"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

const (
	testDeadtime = 2 * time.Second
	testGuard    = 500 * time.Millisecond
)

var t0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// alive is a selected front whose Lease changed ago before t0.
func alive(name string, ago time.Duration) ElectionFront {
	return ElectionFront{Name: name, Selected: true, Heard: true, LastAlive: t0.Add(-ago)}
}

func draining(f ElectionFront) ElectionFront     { f.Draining = true; return f }
func shuttingDown(f ElectionFront) ElectionFront { f.ShuttingDown = true; return f }
func deselected(f ElectionFront) ElectionFront   { f.Selected = false; return f }
func released(f ElectionFront, epoch int64) ElectionFront {
	f.ReleasedEpoch = epoch
	return f
}

func owned(owner string, epoch int64) Ownership { return Ownership{Owner: owner, Epoch: epoch} }

// electCase is one row of an election table: the input and everything
// Elect must return for it. A zero want.Timing means the spec's timings.
type electCase struct {
	name          string
	current       Ownership
	preferred     string
	autoFailback  bool
	fronts        []ElectionFront
	want          Ownership
	wantReason    string
	wantSuccessor string
	wantCands     []string
	wantRequeue   time.Duration
	// voters, ownerHolding and presence are the input's; wantVoters is
	// checked when voters or wantVoters is set.
	voters       []string
	ownerHolding bool
	presence     time.Duration
	wantVoters   []string
}

func TestElect(t *testing.T) {
	runElectCases(t, []electCase{{
		name:        "steady state: the owner stays while it is a candidate",
		current:     owned("a", 3),
		fronts:      []ElectionFront{alive("a", 100*time.Millisecond), alive("b", 0)},
		want:        owned("a", 3),
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"a", "b"},
		wantRequeue: testDeadtime - 100*time.Millisecond,
	}, {
		name:        "first election takes a candidate, announced at once",
		current:     Ownership{},
		fronts:      []ElectionFront{alive("a", 0)},
		want:        Ownership{Owner: "a", Epoch: 1, PreviousOwnerReleased: true},
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"a"},
		wantRequeue: testDeadtime,
	}, {
		name:        "owner loss: a silent owner keeps the address until deadtime plus guard",
		current:     owned("a", 3),
		fronts:      []ElectionFront{alive("a", testDeadtime), alive("b", 0)},
		want:        owned("a", 3),
		wantReason:  webfarmv1.ReasonAwaitingFence,
		wantCands:   []string{"b"},
		wantRequeue: testGuard,
	}, {
		name:        "guard timing: one nanosecond before the fence, nothing moves",
		current:     owned("a", 3),
		fronts:      []ElectionFront{alive("a", testDeadtime+testGuard-time.Nanosecond), alive("b", 0)},
		want:        owned("a", 3),
		wantReason:  webfarmv1.ReasonAwaitingFence,
		wantCands:   []string{"b"},
		wantRequeue: time.Nanosecond,
	}, {
		name:        "guard timing: at deadtime plus guard the next candidate owns it, unreleased",
		current:     owned("a", 3),
		fronts:      []ElectionFront{alive("a", testDeadtime+testGuard), alive("b", 0)},
		want:        Ownership{Owner: "b", Epoch: 4, PreviousOwner: "a"},
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"b"},
		wantRequeue: testDeadtime,
	}, {
		name:        "an owner never heard since the controller started is fenced from that start",
		current:     owned("a", 3),
		fronts:      []ElectionFront{{Name: "a", Selected: true, LastAlive: t0.Add(-time.Second)}, alive("b", 0)},
		want:        owned("a", 3),
		wantReason:  webfarmv1.ReasonAwaitingFence,
		wantCands:   []string{"b"},
		wantRequeue: testDeadtime + testGuard - time.Second,
	}, {
		name:        "an owner back before its fence keeps the address",
		current:     owned("a", 3),
		fronts:      []ElectionFront{alive("a", 0), alive("b", 0)},
		want:        owned("a", 3),
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"a", "b"},
		wantRequeue: testDeadtime,
	}, {
		name:        "a silent owner that acknowledged its release is replaced at once",
		current:     Ownership{Owner: "a", Epoch: 3, ReleaseRequested: true},
		fronts:      []ElectionFront{released(draining(alive("a", testDeadtime)), 3), alive("b", 0)},
		want:        Ownership{Owner: "b", Epoch: 4, PreviousOwner: "a", PreviousOwnerReleased: true},
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"b"},
		wantRequeue: testDeadtime,
	}, {
		name:        "a release acknowledged at an older epoch proves nothing",
		current:     owned("a", 3),
		fronts:      []ElectionFront{released(alive("a", testDeadtime), 2), alive("b", 0)},
		want:        owned("a", 3),
		wantReason:  webfarmv1.ReasonAwaitingFence,
		wantCands:   []string{"b"},
		wantRequeue: testGuard,
	}, {
		name:        "preferred node without autoFailback: a recovered preferred node does not take the address back",
		current:     owned("b", 4),
		preferred:   "a",
		fronts:      []ElectionFront{alive("a", 0), alive("b", 0)},
		want:        owned("b", 4),
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"a", "b"},
		wantRequeue: testDeadtime,
	}, {
		name:          "preferred node with autoFailback: the owner is asked to release to it",
		current:       owned("b", 4),
		preferred:     "a",
		autoFailback:  true,
		fronts:        []ElectionFront{alive("a", 0), alive("b", 0)},
		want:          Ownership{Owner: "b", Epoch: 4, ReleaseRequested: true},
		wantReason:    webfarmv1.ReasonAwaitingRelease,
		wantSuccessor: "a",
		wantCands:     []string{"a", "b"},
		wantRequeue:   testDeadtime,
	}, {
		name:         "preferred node with autoFailback: the release acknowledged, the preferred node owns it",
		current:      Ownership{Owner: "b", Epoch: 4, ReleaseRequested: true},
		preferred:    "a",
		autoFailback: true,
		fronts:       []ElectionFront{alive("a", 0), released(alive("b", 0), 4)},
		want:         Ownership{Owner: "a", Epoch: 5, PreviousOwner: "b", PreviousOwnerReleased: true},
		wantReason:   webfarmv1.ReasonOwned,
		wantCands:    []string{"a", "b"},
		wantRequeue:  testDeadtime,
	}, {
		name:        "preferred node wins the first election",
		current:     Ownership{},
		preferred:   "b",
		fronts:      []ElectionFront{alive("a", 0), alive("b", 0), alive("c", 0)},
		want:        Ownership{Owner: "b", Epoch: 1, PreviousOwnerReleased: true},
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"a", "b", "c"},
		wantRequeue: testDeadtime,
	}, {
		name:          "draining owner: asked to release, no deadtime wait",
		current:       owned("a", 3),
		fronts:        []ElectionFront{draining(alive("a", 0)), alive("b", 0)},
		want:          Ownership{Owner: "a", Epoch: 3, ReleaseRequested: true},
		wantReason:    webfarmv1.ReasonAwaitingRelease,
		wantSuccessor: "b",
		wantCands:     []string{"b"},
		wantRequeue:   testDeadtime,
	}, {
		name:        "draining owner: once released, the next candidate owns it at once",
		current:     Ownership{Owner: "a", Epoch: 3, ReleaseRequested: true},
		fronts:      []ElectionFront{released(draining(alive("a", 0)), 3), alive("b", 0)},
		want:        Ownership{Owner: "b", Epoch: 4, PreviousOwner: "a", PreviousOwnerReleased: true},
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"b"},
		wantRequeue: testDeadtime,
	}, {
		name:        "draining owner undrained before releasing keeps the address",
		current:     Ownership{Owner: "a", Epoch: 3, ReleaseRequested: true},
		fronts:      []ElectionFront{alive("a", 0), alive("b", 0)},
		want:        owned("a", 3),
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"a", "b"},
		wantRequeue: testDeadtime,
	}, {
		name:        "owner undrained after releasing gets the address back at a new epoch",
		current:     Ownership{Owner: "a", Epoch: 3},
		preferred:   "a",
		fronts:      []ElectionFront{released(alive("a", 0), 3), alive("b", 0)},
		want:        Ownership{Owner: "a", Epoch: 4, PreviousOwner: "a", PreviousOwnerReleased: true},
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"a", "b"},
		wantRequeue: testDeadtime,
	}, {
		name:        "draining owner with no other candidate keeps the address",
		current:     owned("a", 3),
		fronts:      []ElectionFront{draining(alive("a", 0)), draining(alive("b", 0))},
		want:        owned("a", 3),
		wantReason:  ReasonHandOffBlocked,
		wantRequeue: testDeadtime,
	}, {
		name:          "owner shutting down: asked to release",
		current:       owned("a", 3),
		fronts:        []ElectionFront{shuttingDown(alive("a", 0)), alive("b", 0)},
		want:          Ownership{Owner: "a", Epoch: 3, ReleaseRequested: true},
		wantReason:    webfarmv1.ReasonAwaitingRelease,
		wantSuccessor: "b",
		wantCands:     []string{"b"},
		wantRequeue:   testDeadtime,
	}, {
		name:        "deselected owner with no successor releases to nobody",
		current:     owned("a", 3),
		fronts:      []ElectionFront{deselected(alive("a", 0))},
		want:        Ownership{Owner: "a", Epoch: 3, ReleaseRequested: true},
		wantReason:  webfarmv1.ReasonAwaitingRelease,
		wantRequeue: testDeadtime,
	}, {
		name:       "all candidates gone: after the fence nobody holds the address",
		current:    owned("a", 3),
		fronts:     []ElectionFront{alive("a", time.Minute), alive("b", time.Minute), draining(alive("c", 0))},
		want:       Ownership{Epoch: 4, PreviousOwner: "a"},
		wantReason: webfarmv1.ReasonNoCandidate,
	}, {
		name:       "no candidate and no owner: nothing changes",
		current:    Ownership{Epoch: 4, PreviousOwner: "a"},
		fronts:     []ElectionFront{alive("a", time.Minute)},
		want:       Ownership{Epoch: 4, PreviousOwner: "a"},
		wantReason: webfarmv1.ReasonNoCandidate,
	}, {
		name:        "candidates returning: the first fresh one owns the address, and waits for the fenced owner before the ownerless epoch",
		current:     Ownership{Epoch: 4, PreviousOwner: "a"},
		fronts:      []ElectionFront{alive("a", time.Minute), alive("b", 0)},
		want:        Ownership{Owner: "b", Epoch: 5, PreviousOwner: "a"},
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"b"},
		wantRequeue: testDeadtime,
	}, {
		name:        "candidates returning after the fenced owner reported the address gone: the first fresh one announces at once",
		current:     Ownership{Epoch: 4, PreviousOwner: "a"},
		fronts:      []ElectionFront{released(alive("a", time.Minute), 4), alive("b", 0)},
		want:        Ownership{Owner: "b", Epoch: 5, PreviousOwnerReleased: true},
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"b"},
		wantRequeue: testDeadtime,
	}, {
		name:        "candidates returning after an acknowledged release: the first fresh one announces at once",
		current:     Ownership{Epoch: 4, PreviousOwner: "a", PreviousOwnerReleased: true},
		fronts:      []ElectionFront{alive("a", time.Minute), alive("b", 0)},
		want:        Ownership{Owner: "b", Epoch: 5, PreviousOwnerReleased: true},
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"b"},
		wantRequeue: testDeadtime,
	}, {
		name:       "a Lease never heard makes no candidate",
		current:    Ownership{Epoch: 4},
		fronts:     []ElectionFront{{Name: "a", Selected: true, LastAlive: t0}},
		want:       Ownership{Epoch: 4},
		wantReason: webfarmv1.ReasonNoCandidate,
	}, {
		name:          "an owner missing from the input is asked to release, never moved",
		current:       owned("a", 3),
		fronts:        []ElectionFront{alive("b", 0)},
		want:          Ownership{Owner: "a", Epoch: 3, ReleaseRequested: true},
		wantReason:    webfarmv1.ReasonAwaitingRelease,
		wantSuccessor: "b",
		wantCands:     []string{"b"},
		wantRequeue:   testDeadtime,
	}})
}

// runElectCases runs Elect on every case and checks all it returns.
func runElectCases(t *testing.T, tests []electCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ElectionInput{
				Key: "web/vip", Now: t0, Deadtime: testDeadtime, Guard: testGuard,
				PreferredNode: tt.preferred, AutoFailback: tt.autoFailback,
				Current: tt.current, Fronts: tt.fronts,
				Voters: tt.voters, OwnerHolding: tt.ownerHolding, Presence: tt.presence,
			}
			got := Elect(in)
			want := tt.want
			if want.Timing == (Timing{}) {
				want.Timing = Timing{Deadtime: testDeadtime, Guard: testGuard}
			}
			if got.Ownership != want {
				t.Errorf("ownership = %+v, want %+v", got.Ownership, want)
			}
			if got.Reason != tt.wantReason {
				t.Errorf("reason = %s, want %s", got.Reason, tt.wantReason)
			}
			if got.Successor != tt.wantSuccessor {
				t.Errorf("successor = %q, want %q", got.Successor, tt.wantSuccessor)
			}
			if !slices.Equal(got.Candidates, tt.wantCands) {
				t.Errorf("candidates = %v, want %v", got.Candidates, tt.wantCands)
			}
			if got.RequeueAfter != tt.wantRequeue {
				t.Errorf("requeueAfter = %v, want %v", got.RequeueAfter, tt.wantRequeue)
			}
			if changed := (got.Owner != tt.current.Owner || got.Epoch != tt.current.Epoch) && !got.Renewed; got.OwnerChanged != changed {
				t.Errorf("ownerChanged = %v, want %v", got.OwnerChanged, changed)
			}
			if (tt.voters != nil || tt.wantVoters != nil) && !slices.Equal(got.Voters, tt.wantVoters) {
				t.Errorf("voters = %v, want %v", got.Voters, tt.wantVoters)
			}
		})
	}
}

// TestElectEpochMonotonic drives one FailoverIP through a life of losses,
// drains, returns and fail-backs, and checks that the epoch grows by exactly
// one at every change of owner and never otherwise.
func TestElectEpochMonotonic(t *testing.T) {
	type step struct {
		after  time.Duration // since the previous step
		fronts func(now time.Time, own Ownership) []ElectionFront
	}
	fresh := func(now time.Time, name string) ElectionFront {
		return ElectionFront{Name: name, Selected: true, Heard: true, LastAlive: now}
	}
	steps := []step{
		{0, func(now time.Time, _ Ownership) []ElectionFront {
			return []ElectionFront{fresh(now, "a"), fresh(now, "b")}
		}},
		{time.Second, func(now time.Time, _ Ownership) []ElectionFront {
			return []ElectionFront{{Name: "a", Selected: true, Heard: true, LastAlive: now.Add(-3 * time.Second)}, fresh(now, "b")}
		}},
		{time.Second, func(now time.Time, own Ownership) []ElectionFront {
			b := fresh(now, "b")
			b.Draining = true
			return []ElectionFront{fresh(now, "a"), b}
		}},
		{time.Second, func(now time.Time, own Ownership) []ElectionFront {
			b := fresh(now, "b")
			b.Draining, b.ReleasedEpoch = true, own.Epoch
			return []ElectionFront{fresh(now, "a"), b}
		}},
		{time.Second, func(now time.Time, _ Ownership) []ElectionFront {
			stale := func(n string) ElectionFront {
				return ElectionFront{Name: n, Selected: true, Heard: true, LastAlive: now.Add(-time.Minute)}
			}
			return []ElectionFront{stale("a"), stale("b")}
		}},
		{time.Second, func(now time.Time, _ Ownership) []ElectionFront { return []ElectionFront{fresh(now, "b")} }},
	}
	now := t0
	var own Ownership
	owners := 0
	for i, s := range steps {
		now = now.Add(s.after)
		res := Elect(ElectionInput{Key: "web/vip", Now: now, Deadtime: testDeadtime, Guard: testGuard, PreferredNode: "a", Current: own, Fronts: s.fronts(now, own)})
		switch {
		case res.OwnerChanged && res.Epoch != own.Epoch+1:
			t.Fatalf("step %d: owner %q -> %q moved the epoch from %d to %d", i, own.Owner, res.Owner, own.Epoch, res.Epoch)
		case !res.OwnerChanged && !res.Renewed && (res.Epoch != own.Epoch || res.Owner != own.Owner):
			t.Fatalf("step %d: epoch or owner changed without OwnerChanged: %+v -> %+v", i, own, res.Ownership)
		}
		if res.OwnerChanged {
			owners++
		}
		own = res.Ownership
	}
	// a; b (a lost); a (b drained and released); nobody; b.
	if own.Owner != "b" || own.Epoch != 5 || owners != 5 {
		t.Errorf("after the life: owner %q at epoch %d after %d changes, want b at 5 after 5", own.Owner, own.Epoch, owners)
	}
}

// TestBestSpreadsAddresses checks that without a preferred node, different
// FailoverIPs do not all land on the same front.
func TestBestSpreadsAddresses(t *testing.T) {
	cands := []string{"f1", "f2", "f3", "f4"}
	owners := map[string]int{}
	for _, key := range []string{"web/a", "web/b", "web/c", "web/d", "web/e", "web/f", "web/g", "web/h"} {
		owners[best(ElectionInput{Key: key}, cands)]++
	}
	if len(owners) < 2 {
		t.Errorf("8 addresses over 4 fronts all went to %v", owners)
	}
}

// outOfServiceFront is f tainted out of service, seen so for the deadtime:
// its last promises have run out.
func outOfServiceFront(f ElectionFront) ElectionFront {
	f.OutOfService, f.OutOfServiceFor = true, testDeadtime
	return f
}

// justOutOfService is f tainted out of service, seen so for only seen.
func justOutOfService(f ElectionFront, seen time.Duration) ElectionFront {
	f.OutOfService, f.OutOfServiceFor = true, seen
	return f
}

// unheard is f reporting the owner unheard at epoch, after the deadtime.

func unheard(f ElectionFront, epoch int64) ElectionFront {
	f.UnheardEpoch, f.UnheardAfter = epoch, testDeadtime
	return f
}

// TestElectVoters covers the rules of the quiet protocol: fronts renew
// their Lease every QuietLeaseInterval and count as present for the
// presence window, and the voters of an epoch, not the Lease, tell that an
// owner is gone.
func TestElectVoters(t *testing.T) {
	const presence = 22 * time.Second
	quiet := 9 * time.Second // a front last seen renewing quietly
	runElectCases(t, []electCase{{
		name:       "a draining front votes at a new epoch: it runs, and can report the owner unheard",
		current:    Ownership{Epoch: 2},
		presence:   presence,
		fronts:     []ElectionFront{alive("a", quiet), draining(alive("b", quiet)), shuttingDown(alive("c", quiet))},
		want:       Ownership{Owner: "a", Epoch: 3, PreviousOwnerReleased: true},
		wantReason: webfarmv1.ReasonOwned, wantCands: []string{"a"}, wantVoters: []string{"a", "b"},
		wantRequeue: presence - quiet,
	}, {
		name:       "an owner that died with the only other voter of its epoch keeps the address unheld: they may be cut off together",
		current:    owned("a", 3),
		voters:     []string{"a", "b"},
		presence:   presence,
		fronts:     []ElectionFront{alive("a", time.Hour), alive("b", time.Hour), alive("c", quiet)},
		want:       owned("a", 3),
		wantReason: webfarmv1.ReasonAwaitingFence, wantCands: []string{"c"}, wantVoters: []string{"a", "b"},
	}, {
		name:       "an operator marks that voter out of service: the address moves",
		current:    owned("a", 3),
		voters:     []string{"a", "b"},
		presence:   presence,
		fronts:     []ElectionFront{alive("a", time.Hour), outOfServiceFront(alive("b", time.Hour)), alive("c", quiet)},
		want:       Ownership{Owner: "c", Epoch: 4, PreviousOwner: "a"},
		wantReason: webfarmv1.ReasonOwned, wantCands: []string{"c"}, wantVoters: []string{"c"},
		wantRequeue: presence - quiet,
	}, {
		// Random schedule 6546931: the owner, back from a power cycle,
		// held on the confirmations of two voters powered off and
		// tainted at that moment, and the address went to another front.
		name:       "a voter marked out of service only now counts a deadtime later: its last promises may still hold",
		current:    owned("a", 3),
		voters:     []string{"a", "b"},
		presence:   presence,
		fronts:     []ElectionFront{alive("a", time.Hour), justOutOfService(alive("b", time.Hour), 500*time.Millisecond), alive("c", quiet)},
		want:       owned("a", 3),
		wantReason: webfarmv1.ReasonAwaitingFence, wantCands: []string{"c"}, wantVoters: []string{"a", "b"},
		wantRequeue: testDeadtime - 500*time.Millisecond,
	}, {
		name:         "an out-of-service voter does not move an owner whose Lease is fresh",
		current:      owned("a", 3),
		ownerHolding: true,
		voters:       []string{"a", "b"},
		presence:     presence,
		fronts:       []ElectionFront{alive("a", time.Second), outOfServiceFront(alive("b", quiet)), alive("c", quiet)},
		want:         owned("a", 3),
		wantReason:   webfarmv1.ReasonOwned, wantCands: []string{"a", "c"}, wantVoters: []string{"a", "b"},
		wantRequeue: testDeadtime + testGuard - time.Second,
	}, {
		name:        "quiet steady state: an owner seen renewing 9s ago stays",
		current:     owned("a", 3),
		voters:      []string{"a", "b"},
		presence:    presence,
		fronts:      []ElectionFront{alive("a", quiet), alive("b", quiet)},
		want:        owned("a", 3),
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"a", "b"},
		wantVoters:  []string{"a", "b"},
		wantRequeue: presence - quiet,
	}, {
		name:        "a voter reports the owner unheard, its Lease silent: the reporter takes over at once",
		current:     owned("a", 3),
		voters:      []string{"a", "b", "c"},
		presence:    presence,
		fronts:      []ElectionFront{alive("a", quiet), alive("b", quiet), unheard(alive("c", quiet), 3)},
		want:        Ownership{Owner: "c", Epoch: 4, PreviousOwner: "a"},
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"a", "b", "c"},
		wantVoters:  []string{"b", "c"},
		wantRequeue: presence - quiet,
	}, {
		name:        "five voters: one report moves nothing, since the three others may still vouch for the owner through an API outage",
		current:     owned("a", 3),
		voters:      []string{"a", "b", "c", "d", "e"},
		presence:    presence,
		fronts:      []ElectionFront{alive("a", quiet), alive("b", quiet), alive("c", quiet), alive("d", quiet), unheard(alive("e", quiet), 3)},
		want:        owned("a", 3),
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"a", "b", "c", "d", "e"},
		wantVoters:  []string{"a", "b", "c", "d", "e"},
		wantRequeue: presence - quiet,
	}, {
		name:     "five voters: two reports leave too few to vouch, and a reporter takes over",
		current:  owned("a", 3),
		voters:   []string{"a", "b", "c", "d", "e"},
		presence: presence,
		fronts: []ElectionFront{alive("a", quiet), alive("b", quiet), alive("c", quiet),
			unheard(draining(alive("d", quiet)), 3), unheard(alive("e", quiet), 3)},
		want:        Ownership{Owner: "e", Epoch: 4, PreviousOwner: "a"},
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"a", "b", "c", "e"},
		wantVoters:  []string{"b", "c", "d", "e"},
		wantRequeue: presence - quiet,
	}, {
		name:       "five voters: an owner silent past the presence window is not replaced without reports, since a quorum without its successor may vouch",
		current:    owned("a", 3),
		voters:     []string{"a", "b", "c", "d", "e"},
		presence:   presence,
		fronts:     []ElectionFront{alive("a", time.Hour), alive("b", quiet), alive("c", quiet), alive("d", quiet), alive("e", quiet)},
		want:       owned("a", 3),
		wantReason: webfarmv1.ReasonAwaitingFence,
		wantCands:  []string{"b", "c", "d", "e"},
		wantVoters: []string{"a", "b", "c", "d", "e"},
	}, {
		name:        "a voter reports the owner unheard, but the owner renewed its Lease lately: it stays until deadtime plus guard",
		current:     owned("a", 3),
		voters:      []string{"a", "b"},
		presence:    presence,
		fronts:      []ElectionFront{alive("a", time.Second), unheard(alive("b", quiet), 3)},
		want:        owned("a", 3),
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"a", "b"},
		wantVoters:  []string{"a", "b"},
		wantRequeue: testDeadtime + testGuard - time.Second,
	}, {
		name:     "a report after less than the longest deadtime the owner may use moves nothing: the voter's view was behind a raise",
		current:  owned("a", 3),
		voters:   []string{"a", "b"},
		presence: presence,
		fronts: []ElectionFront{alive("a", quiet),
			func() ElectionFront { f := unheard(alive("b", quiet), 3); f.UnheardAfter = testDeadtime / 2; return f }()},
		want:       owned("a", 3),
		wantReason: webfarmv1.ReasonOwned, wantCands: []string{"a", "b"}, wantVoters: []string{"a", "b"},
		wantRequeue: presence - quiet,
	}, {
		name:       "a report of an older epoch moves nothing",
		current:    owned("a", 3),
		voters:     []string{"a", "b"},
		presence:   presence,
		fronts:     []ElectionFront{alive("a", quiet), unheard(alive("b", quiet), 2)},
		want:       owned("a", 3),
		wantReason: webfarmv1.ReasonOwned, wantCands: []string{"a", "b"}, wantVoters: []string{"a", "b"},
		wantRequeue: presence - quiet,
	}, {
		name:         "a report from a front that is no voter moves nothing: the owner does not need its confirmation",
		current:      owned("a", 3),
		ownerHolding: true,
		voters:       []string{"a", "b"},
		presence:     presence,
		fronts:       []ElectionFront{alive("a", quiet), alive("b", quiet), unheard(alive("c", quiet), 3)},
		want:         owned("a", 3),
		wantReason:   webfarmv1.ReasonOwned, wantCands: []string{"a", "b", "c"}, wantVoters: []string{"a", "b"},
		wantRequeue: presence - quiet,
	}, {
		name:       "the owner alone among the voters: its Lease decides, as it renews every keepalive",
		current:    owned("a", 3),
		voters:     []string{"a"},
		presence:   presence,
		fronts:     []ElectionFront{alive("a", testDeadtime+testGuard), alive("b", quiet)},
		want:       Ownership{Owner: "b", Epoch: 4, PreviousOwner: "a"},
		wantReason: webfarmv1.ReasonOwned, wantCands: []string{"a", "b"}, wantVoters: []string{"b"},
		wantRequeue: presence - quiet,
	}, {
		name:         "after the move, the old owner that its peers report unheard is no candidate: autoFailback waits for it",
		current:      Ownership{Owner: "c", Epoch: 4, PreviousOwner: "a"},
		voters:       []string{"a", "b", "c"},
		presence:     presence,
		preferred:    "a",
		autoFailback: true,
		fronts: []ElectionFront{alive("a", quiet),
			func() ElectionFront { f := alive("b", quiet); f.UnheardFronts = []string{"a"}; return f }(),
			func() ElectionFront { f := alive("c", 0); f.UnheardFronts = []string{"a"}; return f }()},
		want:        Ownership{Owner: "c", Epoch: 4, PreviousOwner: "a"},
		wantReason:  webfarmv1.ReasonOwned,
		wantCands:   []string{"b", "c"},
		wantVoters:  []string{"a", "b", "c"},
		wantRequeue: presence,
	}, {
		name:         "an old owner still reporting the address held at an older epoch is no candidate: it may not reach the API server",
		current:      Ownership{Owner: "b", Epoch: 4, PreviousOwner: "a"},
		voters:       []string{"a", "b"},
		presence:     presence,
		preferred:    "a",
		autoFailback: true,
		fronts:       []ElectionFront{func() ElectionFront { f := alive("a", quiet); f.HoldingEpoch = 3; return f }(), alive("b", 0)},
		want:         Ownership{Owner: "b", Epoch: 4, PreviousOwner: "a"},
		wantReason:   webfarmv1.ReasonOwned,
		wantCands:    []string{"b"},
		wantVoters:   []string{"a", "b"},
		wantRequeue:  presence,
	}, {
		name:     "a front that one peer of three cannot hear stays a candidate: a deaf front reports everyone",
		current:  owned("a", 3),
		voters:   []string{"a", "b", "c"},
		presence: presence,
		fronts: []ElectionFront{alive("a", quiet), alive("b", quiet),
			func() ElectionFront { f := alive("c", 0); f.UnheardFronts = []string{"b"}; return f }()},
		want:       owned("a", 3),
		wantReason: webfarmv1.ReasonOwned, wantCands: []string{"a", "b", "c"}, wantVoters: []string{"a", "b", "c"},
		wantRequeue: presence - quiet,
	}, {
		name:     "a dead front keeps its last report, which keeps nobody out once the others report it",
		current:  owned("c", 4),
		voters:   []string{"b", "c", "d"},
		presence: presence,
		fronts: []ElectionFront{
			func() ElectionFront { f := alive("b", quiet); f.UnheardFronts = []string{"d"}; return f }(),
			func() ElectionFront { f := alive("c", 0); f.UnheardFronts = []string{"b"}; return f }(),
			func() ElectionFront { f := alive("d", 0); f.UnheardFronts = []string{"b"}; return f }()},
		want:       owned("c", 4),
		wantReason: webfarmv1.ReasonOwned, wantCands: []string{"c", "d"}, wantVoters: []string{"b", "c", "d"},
		wantRequeue: presence,
	}, {
		name:     "an owner some peer cannot hear stays a candidate: its voters decide on it",
		current:  owned("a", 3),
		voters:   []string{"a", "b", "c"},
		presence: presence,
		fronts: []ElectionFront{alive("a", quiet), alive("b", quiet),
			func() ElectionFront { f := alive("c", 0); f.UnheardFronts = []string{"a"}; return f }()},
		want:       owned("a", 3),
		wantReason: webfarmv1.ReasonOwned, wantCands: []string{"a", "b", "c"}, wantVoters: []string{"a", "b", "c"},
		wantRequeue: presence - quiet,
	}, {
		name:         "voters stay for the epoch when the candidates change",
		current:      owned("a", 3),
		ownerHolding: true,
		voters:       []string{"a", "b"},
		presence:     presence,
		fronts:       []ElectionFront{alive("a", quiet), draining(alive("b", quiet)), alive("c", 0)},
		want:         owned("a", 3),
		wantReason:   webfarmv1.ReasonOwned, wantCands: []string{"a", "c"}, wantVoters: []string{"a", "b"},
		wantRequeue: presence - quiet,
	}, {
		name:         "a front joined since the epoch began, the owner's Lease fresh: renewed with it as a voter",
		ownerHolding: true,
		current:      owned("a", 3),
		voters:       []string{"a", "b"},
		presence:     presence,
		fronts:       []ElectionFront{alive("a", 100*time.Millisecond), alive("b", quiet), alive("c", 0)},
		want:         Ownership{Owner: "a", Epoch: 4, PreviousOwner: "a", PreviousOwnerReleased: true},
		wantReason:   webfarmv1.ReasonOwned, wantCands: []string{"a", "b", "c"}, wantVoters: []string{"a", "b", "c"},
		wantRequeue: presence - 100*time.Millisecond,
	}, {
		name:         "a voter died, the owner's Lease fresh (it lacks that voter's confirmation): renewed without it",
		ownerHolding: true,
		current:      owned("a", 3),
		voters:       []string{"a", "b", "c"},
		presence:     presence,
		fronts:       []ElectionFront{alive("a", 100*time.Millisecond), alive("b", quiet), alive("c", time.Hour)},
		want:         Ownership{Owner: "a", Epoch: 4, PreviousOwner: "a", PreviousOwnerReleased: true},
		wantReason:   webfarmv1.ReasonOwned, wantCands: []string{"a", "b"}, wantVoters: []string{"a", "b"},
		wantRequeue: presence - 100*time.Millisecond,
	}, {
		name:         "a voter that is no front any more is left out too",
		ownerHolding: true,
		current:      owned("a", 3),
		voters:       []string{"a", "b", "gone"},
		presence:     presence,
		fronts:       []ElectionFront{alive("a", 100*time.Millisecond), alive("b", quiet)},
		want:         Ownership{Owner: "a", Epoch: 4, PreviousOwner: "a", PreviousOwnerReleased: true},
		wantReason:   webfarmv1.ReasonOwned, wantCands: []string{"a", "b"}, wantVoters: []string{"a", "b"},
		wantRequeue: presence - 100*time.Millisecond,
	}, {
		name:         "a voter died, but the owner's Lease is quiet: nothing renewed until the owner renews it",
		current:      owned("a", 3),
		ownerHolding: true,
		voters:       []string{"a", "b", "c"},
		presence:     presence,
		fronts:       []ElectionFront{alive("a", quiet), alive("b", quiet), alive("c", time.Hour)},
		want:         owned("a", 3),
		wantReason:   webfarmv1.ReasonOwned, wantCands: []string{"a", "b"}, wantVoters: []string{"a", "b", "c"},
		wantRequeue: presence - quiet,
	}, {
		name:         "a front joined, but the owner's Lease is quiet: nothing renewed until the owner renews it (it does, seeing voters behind)",
		current:      owned("a", 3),
		ownerHolding: true,
		voters:       []string{"a", "b"},
		presence:     presence,
		fronts:       []ElectionFront{alive("a", quiet), alive("b", quiet), alive("c", 0)},
		want:         owned("a", 3),
		wantReason:   webfarmv1.ReasonOwned, wantCands: []string{"a", "b", "c"}, wantVoters: []string{"a", "b"},
		wantRequeue: presence - quiet,
	}, {
		name:       "a front joined while the owner waits to hold: renewed at once, so that the newcomer can report it unheard",
		current:    owned("a", 3),
		voters:     []string{"a", "b"},
		presence:   presence,
		fronts:     []ElectionFront{alive("a", quiet), alive("b", quiet), alive("c", 0)},
		want:       Ownership{Owner: "a", Epoch: 4},
		wantReason: webfarmv1.ReasonOwned, wantCands: []string{"a", "b", "c"}, wantVoters: []string{"a", "b", "c"},
		wantRequeue: presence - quiet,
	}, {
		name:       "an owner still waiting for its previous owner keeps waiting across the renewal",
		current:    Ownership{Owner: "a", Epoch: 3, PreviousOwner: "b"},
		voters:     []string{"a", "b"},
		presence:   presence,
		fronts:     []ElectionFront{alive("a", 0), alive("b", quiet), alive("c", 0)},
		want:       Ownership{Owner: "a", Epoch: 4, PreviousOwner: "b"},
		wantReason: webfarmv1.ReasonOwned, wantCands: []string{"a", "b", "c"}, wantVoters: []string{"a", "b", "c"},
		wantRequeue: presence,
	}, {
		name:       "an owner gone from presence is replaced only by one of its voters: their promises guard its proof",
		current:    owned("a", 3),
		voters:     []string{"a", "b"},
		presence:   presence,
		fronts:     []ElectionFront{alive("a", time.Minute), alive("c", 0)},
		want:       owned("a", 3),
		wantReason: webfarmv1.ReasonAwaitingFence, wantCands: []string{"c"}, wantVoters: []string{"a", "b"},
	}, {
		name:       "... and by a voter when one is a candidate",
		current:    owned("a", 3),
		voters:     []string{"a", "b"},
		presence:   presence,
		fronts:     []ElectionFront{alive("a", time.Minute), alive("b", quiet), alive("c", 0)},
		want:       Ownership{Owner: "b", Epoch: 4, PreviousOwner: "a"},
		wantReason: webfarmv1.ReasonOwned, wantCands: []string{"b", "c"}, wantVoters: []string{"b", "c"},
		wantRequeue: presence - quiet,
	}, {
		name:         "a status without voters, its owner holding: renewed at a new epoch with voters",
		current:      owned("a", 3),
		ownerHolding: true,
		presence:     presence,
		fronts:       []ElectionFront{alive("a", 0), alive("b", quiet)},
		want:         Ownership{Owner: "a", Epoch: 4, PreviousOwner: "a", PreviousOwnerReleased: true},
		wantReason:   webfarmv1.ReasonOwned, wantCands: []string{"a", "b"}, wantVoters: []string{"a", "b"},
		wantRequeue: presence,
	}, {
		name:       "a status without voters, its owner not holding yet: nothing renewed",
		current:    owned("a", 3),
		presence:   presence,
		fronts:     []ElectionFront{alive("a", 0), alive("b", quiet)},
		want:       owned("a", 3),
		wantReason: webfarmv1.ReasonOwned, wantCands: []string{"a", "b"},
		wantRequeue: testDeadtime + testGuard,
	}})
}
