package controllers

import (
	"testing"
	"time"
)

func TestWithdraw(t *testing.T) {
	withdrawn := func(prev string, epoch int64) Ownership { return Ownership{Epoch: epoch, PreviousOwner: prev} }
	cleared := func(prev string, epoch int64) Ownership {
		return Ownership{Epoch: epoch, PreviousOwner: prev, PreviousOwnerReleased: true}
	}
	tests := []struct {
		name          string
		current       Ownership
		holder        ElectionFront
		acked         int64
		voters        []string
		voterFronts   []ElectionFront
		want          Ownership
		wantWithdrawn bool
		wantHow       string // empty: not clear
		wantRequeue   time.Duration
	}{{
		name:          "a live owner loses the address at a new epoch and must say so",
		current:       Ownership{Owner: "a", Epoch: 3, ReleaseRequested: true},
		holder:        alive("a", time.Second),
		want:          withdrawn("a", 4),
		wantWithdrawn: true,
		wantRequeue:   testDeadtime + testGuard - time.Second,
	}, {
		name:          "an acknowledgement of the old epoch is no proof for the new one",
		current:       owned("a", 3),
		holder:        alive("a", 0),
		acked:         3,
		want:          withdrawn("a", 4),
		wantWithdrawn: true,
		wantRequeue:   testDeadtime + testGuard,
	}, {
		name:        "the previous owner acknowledges the withdrawal epoch",
		current:     withdrawn("a", 4),
		holder:      alive("a", 0),
		acked:       4,
		want:        cleared("a", 4),
		wantHow:     clearAcknowledged,
		wantRequeue: 0,
	}, {
		name:    "an acknowledgement of a later epoch counts too",
		current: withdrawn("a", 4),
		holder:  alive("a", 0),
		acked:   5,
		want:    cleared("a", 4),
		wantHow: clearAcknowledged,
	}, {
		name:        "one nanosecond before deadtime plus guard, a silent owner may still hold it",
		current:     withdrawn("a", 4),
		holder:      alive("a", testDeadtime+testGuard-time.Nanosecond),
		want:        withdrawn("a", 4),
		wantRequeue: time.Nanosecond,
	}, {
		name:    "at deadtime plus guard a silent owner has fenced itself",
		current: withdrawn("a", 4),
		holder:  alive("a", testDeadtime+testGuard),
		want:    cleared("a", 4),
		wantHow: clearFenced,
	}, {
		name:          "an owner silent long ago is withdrawn and clear at once",
		current:       owned("a", 3),
		holder:        alive("a", time.Hour),
		want:          cleared("a", 4),
		wantWithdrawn: true,
		wantHow:       clearFenced,
	}, {
		name:        "an owner silent for the presence window may still hold through a voter that did not report the withdrawal",
		current:     withdrawn("a", 4),
		holder:      alive("a", time.Hour),
		voters:      []string{"a", "b", "c"},
		voterFronts: []ElectionFront{alive("b", 0), alive("c", 0)},
		want:        withdrawn("a", 4),
	}, {
		name:        "a voter reports it vouched for nobody for a deadtime at the withdrawal epoch",
		current:     withdrawn("a", 4),
		holder:      alive("a", time.Hour),
		voters:      []string{"a", "b", "c"},
		voterFronts: []ElectionFront{alive("b", 0), unheard(alive("c", 0), 4)},
		want:        cleared("a", 4),
		wantHow:     clearFenced,
	}, {
		name:        "five voters: one report leaves three that may still vouch",
		current:     withdrawn("a", 4),
		holder:      alive("a", time.Hour),
		voters:      []string{"a", "b", "c", "d", "e"},
		voterFronts: []ElectionFront{alive("b", 0), alive("c", 0), alive("d", 0), unheard(alive("e", 0), 4)},
		want:        withdrawn("a", 4),
	}, {
		name:        "five voters: two reports leave too few to vouch",
		current:     withdrawn("a", 4),
		holder:      alive("a", time.Hour),
		voters:      []string{"a", "b", "c", "d", "e"},
		voterFronts: []ElectionFront{alive("b", 0), alive("c", 0), unheard(alive("d", 0), 4), outOfServiceFront(alive("e", 0))},
		want:        cleared("a", 4),
		wantHow:     clearFenced,
	}, {
		name:        "a report of the epoch before the withdrawal counts too: that voter withdrew from the owner",
		current:     withdrawn("a", 4),
		holder:      alive("a", time.Hour),
		voters:      []string{"a", "b"},
		voterFronts: []ElectionFront{unheard(alive("b", 0), 3)},
		want:        withdrawn("a", 4),
	}, {
		name:    "a report after less than the fencing deadtime proves nothing",
		current: withdrawn("a", 4),
		holder:  alive("a", time.Hour),
		voters:  []string{"a", "b"},
		voterFronts: []ElectionFront{func() ElectionFront {
			f := unheard(alive("b", 0), 4)
			f.UnheardAfter = testDeadtime / 2
			return f
		}()},
		want: withdrawn("a", 4),
	}, {
		name:        "a voter marked out of service vouches for nobody",
		current:     withdrawn("a", 4),
		holder:      alive("a", time.Hour),
		voters:      []string{"a", "b"},
		voterFronts: []ElectionFront{outOfServiceFront(alive("b", time.Hour))},
		want:        cleared("a", 4),
		wantHow:     clearFenced,
	}, {
		name:        "a voter marked out of service only now may have promised just before: it counts a fencing deadtime later",
		current:     withdrawn("a", 4),
		holder:      alive("a", time.Hour),
		voters:      []string{"a", "b"},
		voterFronts: []ElectionFront{justOutOfService(alive("b", time.Hour), 0)},
		want:        withdrawn("a", 4),
		wantRequeue: testDeadtime,
	}, {
		name:        "a voter's report does not shorten the Lease's silence",
		current:     withdrawn("a", 4),
		holder:      alive("a", 0),
		voters:      []string{"a", "b"},
		voterFronts: []ElectionFront{unheard(alive("b", 0), 4)},
		want:        withdrawn("a", 4),
		wantRequeue: testDeadtime + testGuard,
	}, {
		name:    "an owner that was its epoch's only voter holds through its Lease alone",
		current: withdrawn("a", 4),
		holder:  alive("a", testDeadtime+testGuard),
		voters:  []string{"a"},
		want:    cleared("a", 4),
		wantHow: clearFenced,
	}, {
		name:        "the holder's own report is no voter's",
		current:     withdrawn("a", 4),
		holder:      alive("a", time.Hour),
		voters:      []string{"a", "b"},
		voterFronts: []ElectionFront{unheard(alive("a", time.Hour), 4)},
		want:        withdrawn("a", 4),
	}, {
		name:    "never owned: clear",
		current: Ownership{},
		holder:  ElectionFront{},
		want:    Ownership{},
		wantHow: clearUnowned,
	}, {
		name:    "a recorded release stays clear whatever the node does",
		current: cleared("a", 4),
		holder:  alive("a", 0),
		want:    cleared("a", 4),
		wantHow: clearUnowned,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Withdraw(WithdrawalInput{
				Now: t0, Deadtime: testDeadtime, Guard: testGuard,
				Current: tt.current, Holder: tt.holder, AcknowledgedEpoch: tt.acked,
				Voters: tt.voters, VoterFronts: tt.voterFronts,
			})
			if got.Ownership != tt.want {
				t.Errorf("ownership = %+v, want %+v", got.Ownership, tt.want)
			}
			if got.Owner != "" {
				t.Errorf("a withdrawal named an owner: %+v", got.Ownership)
			}
			if got.Withdrawn != tt.wantWithdrawn || got.Clear != (tt.wantHow != "") || got.How != tt.wantHow {
				t.Errorf("withdrawn %v, clear %v (%q); want %v, %v (%q)", got.Withdrawn, got.Clear, got.How, tt.wantWithdrawn, tt.wantHow != "", tt.wantHow)
			}
			if got.RequeueAfter != tt.wantRequeue {
				t.Errorf("requeue after %v, want %v", got.RequeueAfter, tt.wantRequeue)
			}
		})
	}
}

func TestCanonicalAddress(t *testing.T) {
	for _, tt := range []struct{ a, b string }{
		{"10.0.0.1", "::ffff:10.0.0.1"},
		{"2001:db8::1", "2001:0db8:0000:0000:0000:0000:0000:0001"},
		{"2001:DB8::A", "2001:db8::a"},
	} {
		if ca, cb := canonicalAddress(tt.a), canonicalAddress(tt.b); ca != cb {
			t.Errorf("%s -> %s and %s -> %s: want the same", tt.a, ca, tt.b, cb)
		}
	}
	for _, tt := range []struct{ a, b string }{
		{"10.0.0.1", "10.0.0.2"},
		{"2001:db8::1", "2001:db8::1:0"},
		{"10.0.0.1", "::10.0.0.1"}, // IPv4-compatible, not mapped: another address
	} {
		if canonicalAddress(tt.a) == canonicalAddress(tt.b) {
			t.Errorf("%s and %s: want different", tt.a, tt.b)
		}
	}
}
