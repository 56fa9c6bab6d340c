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
		stopped       map[string]time.Duration // how long ago each voter was first seen at the withdrawal epoch
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
		name:    "an owner silent for the presence window may still hold through a voter that did not see the withdrawal",
		current: withdrawn("a", 4),
		holder:  alive("a", time.Hour),
		voters:  []string{"a", "b", "c"},
		want:    withdrawn("a", 4),
	}, {
		name:        "a voter seen at the withdrawal epoch vouches no more deadtime plus guard later",
		current:     withdrawn("a", 4),
		holder:      alive("a", time.Hour),
		voters:      []string{"a", "b", "c"},
		stopped:     map[string]time.Duration{"c": time.Second},
		want:        withdrawn("a", 4),
		wantRequeue: testDeadtime + testGuard - time.Second,
	}, {
		name:    "the first voter to stop vouching counts",
		current: withdrawn("a", 4),
		holder:  alive("a", time.Hour),
		voters:  []string{"a", "b", "c"},
		stopped: map[string]time.Duration{"b": testDeadtime + testGuard, "c": 0},
		want:    cleared("a", 4),
		wantHow: clearFenced,
	}, {
		name:        "a voter that stopped vouching does not shorten the Lease's silence",
		current:     withdrawn("a", 4),
		holder:      alive("a", 0),
		voters:      []string{"a", "b"},
		stopped:     map[string]time.Duration{"b": time.Hour},
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
		name:    "the holder's own report is no voter's",
		current: withdrawn("a", 4),
		holder:  alive("a", time.Hour),
		voters:  []string{"a", "b"},
		stopped: map[string]time.Duration{"a": time.Hour},
		want:    withdrawn("a", 4),
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
			stopped := map[string]time.Time{}
			for v, ago := range tt.stopped {
				stopped[v] = t0.Add(-ago)
			}
			got := Withdraw(WithdrawalInput{
				Now: t0, Deadtime: testDeadtime, Guard: testGuard,
				Current: tt.current, Holder: tt.holder, AcknowledgedEpoch: tt.acked,
				Voters: tt.voters, StoppedVouching: stopped,
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
