package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	testingclock "k8s.io/utils/clock/testing"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

func TestWitnessesCountOnlyTheCurrentOwnersAtItsEpoch(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	key := types.NamespacedName{Namespace: "shop", Name: "vip"}
	status := func(owner string, epoch int64, w *webfarmv1.OwnerWitness) webfarmv1.FailoverIPStatus {
		return webfarmv1.FailoverIPStatus{Owner: owner, Epoch: epoch, OwnerWitness: w}
	}
	w1 := &webfarmv1.OwnerWitness{Node: "a", Epoch: 3, Renewal: "r1"}
	w2 := &webfarmv1.OwnerWitness{Node: "a", Epoch: 3, Renewal: "r2"}
	for _, tc := range []struct {
		name   string
		st     webfarmv1.FailoverIPStatus
		wantOK bool
	}{
		{"no witness", status("a", 3, nil), false},
		{"no owner", status("", 3, w1), false},
		{"another node's", status("b", 3, w1), false},
		{"of an earlier epoch", status("a", 4, w1), false},
		{"the owner's at its epoch", status("a", 3, w1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testingclock.NewFakePassiveClock(start)
			ws := NewWitnesses(clk)
			at, ok := ws.lastSeen(key, tc.st)
			if ok != tc.wantOK || (ok && !at.Equal(start)) {
				t.Errorf("lastSeen = %v, %v; want %v at %v", at, ok, tc.wantOK, start)
			}
		})
	}

	clk := testingclock.NewFakePassiveClock(start)
	ws := NewWitnesses(clk)
	ws.lastSeen(key, status("a", 3, w1))
	clk.SetTime(start.Add(time.Second))
	if at, _ := ws.lastSeen(key, status("a", 3, w1)); !at.Equal(start) {
		t.Errorf("the same witness seen again: last seen %v, want %v, when it was first seen", at, start)
	}
	if at, _ := ws.lastSeen(key, status("a", 3, w2)); !at.Equal(start.Add(time.Second)) {
		t.Errorf("a new witness: last seen %v, want now (%v)", at, start.Add(time.Second))
	}
	ws.Forget(key)
	clk.SetTime(start.Add(2 * time.Second))
	if at, _ := ws.lastSeen(key, status("a", 3, w2)); !at.Equal(start.Add(2 * time.Second)) {
		t.Errorf("a witness seen after forget: last seen %v, want now (%v), as after a restart", at, start.Add(2*time.Second))
	}
}

func TestWitnessedMakesTheOwnerAliveOnlyLater(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	key := types.NamespacedName{Namespace: "shop", Name: "vip"}
	st := webfarmv1.FailoverIPStatus{Owner: "a", Epoch: 3, OwnerWitness: &webfarmv1.OwnerWitness{Node: "a", Epoch: 3, Renewal: "r1"}}
	ws := NewWitnesses(testingclock.NewFakePassiveClock(start))
	fronts := []ElectionFront{
		{Name: "a", Heard: true, LastAlive: start.Add(-5 * time.Second)},
		{Name: "b", Heard: true, LastAlive: start.Add(-5 * time.Second)},
	}
	ws.Witnessed(key, st, fronts)
	if !fronts[0].LastAlive.Equal(start) || !fronts[1].LastAlive.Equal(start.Add(-5*time.Second)) {
		t.Errorf("after the owner's witness: last alive a %v, b %v; want a now (%v), b unchanged", fronts[0].LastAlive, fronts[1].LastAlive, start)
	}
	later := []ElectionFront{{Name: "a", Heard: true, LastAlive: start.Add(time.Second)}}
	ws.Witnessed(key, st, later)
	if !later[0].LastAlive.Equal(start.Add(time.Second)) {
		t.Errorf("a Lease renewal seen after the witness: last alive %v, want it kept (%v)", later[0].LastAlive, start.Add(time.Second))
	}
}
