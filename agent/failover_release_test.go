package agent

import (
	"testing"
	"time"

	"github.com/webfarm/webfarm/agent/ownership"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// TestReleaseGrant: a planned release renews the address's grant exactly as
// far as holding it would, and never without a proof of liveness.
func TestReleaseGrant(t *testing.T) {
	now := time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)
	timing := ownership.Timing{Keepalive: 200 * time.Millisecond, Deadtime: 700 * time.Millisecond, Guard: 150 * time.Millisecond}
	releasing := func(renewedAgo time.Duration, holding bool, release bool) ownership.Input {
		in := ownership.Input{
			Node: "front1", Address: "10.99.0.10", Timing: timing, Now: now,
			Status: ownership.Status{Owner: "front1", Epoch: 3, ReleaseRequested: release,
				Candidates: []string{"front1", "front2"}, Voters: []string{"front1", "front2"}},
		}
		if holding {
			in.Memory = ownership.Memory{Holding: true, HeldEpoch: 3}
		}
		if renewedAgo >= 0 {
			in.LastAPIProof = now.Add(-renewedAgo)
		}
		return in
	}
	cases := []struct {
		name string
		in   ownership.Input
		want time.Duration
	}{
		{"held, proved by a Lease renewed 100ms ago: the rest of its window", releasing(100*time.Millisecond, true, true), 450 * time.Millisecond},
		{"held, the proof ran out: nothing", releasing(600*time.Millisecond, true, true), 0},
		{"held, never proved: nothing", releasing(-1, true, true), 0},
		{"not held: nothing to renew", releasing(100*time.Millisecond, false, true), 0},
		{"no release requested: Ensure renews it", releasing(100*time.Millisecond, true, false), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := ownership.Decide(tc.in)
			if got := releaseGrant(tc.in, d); got != tc.want {
				t.Errorf("releaseGrant = %v after %s, want %v", got, d, tc.want)
			}
		})
	}
}

func TestAwaitsHandOff(t *testing.T) {
	status := func(owner string, release bool, cands ...string) *webfarmv1.FailoverIP {
		return &webfarmv1.FailoverIP{Status: webfarmv1.FailoverIPStatus{Owner: owner, Epoch: 4, ReleaseRequested: release, Candidates: cands}}
	}
	cases := []struct {
		name string
		fip  *webfarmv1.FailoverIP
		node string
		want bool
	}{
		{"a candidate while the owner is asked to release", status("front1", true, "front2", "front3"), "front2", true},
		{"the owner releasing", status("front1", true, "front1", "front2"), "front1", false},
		{"no candidate", status("front1", true, "front2"), "front3", false},
		{"no release requested", status("front1", false, "front1", "front2"), "front2", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := awaitsHandOff(tc.fip, tc.node); got != tc.want {
				t.Errorf("awaitsHandOff = %v, want %v", got, tc.want)
			}
		})
	}
}
