package serving

import (
	"errors"
	"strings"
	"testing"
	"time"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

var (
	errRefused = errors.New("connection refused")
	errTimeout = errors.New("no echo reply in time")
	errDown    = errors.New("link eth0 is down")
)

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name        string
		obs         Observation
		wantOK      bool
		wantReason  string
		wantMessage string
	}{{
		name:       "everything answers, no ping targets",
		obs:        Observation{Proxy: map[int32]error{80: nil, 8080: nil}},
		wantOK:     true,
		wantReason: webfarmv1.ServingReasonServing,
	}, {
		name:        "the link comes first: a proxy behind a dead link fails because of it",
		obs:         Observation{Link: errDown, Proxy: map[int32]error{80: errRefused}, Pings: []error{errTimeout}},
		wantReason:  webfarmv1.ServingReasonLinkDown,
		wantMessage: "link eth0 is down",
	}, {
		name:        "one frontend of two not answering is enough to stop serving",
		obs:         Observation{Proxy: map[int32]error{80: nil, 8080: errRefused}},
		wantReason:  webfarmv1.ServingReasonProxyNotAnswering,
		wantMessage: "frontend port 8080: connection refused",
	}, {
		name:        "the lowest failing port is named, whatever the map order",
		obs:         Observation{Proxy: map[int32]error{9000: errRefused, 81: errRefused, 80: nil}},
		wantReason:  webfarmv1.ServingReasonProxyNotAnswering,
		wantMessage: "frontend port 81:",
	}, {
		name:       "ping group: one target of two answering is enough (ipfail's any)",
		obs:        Observation{Proxy: map[int32]error{80: nil}, Pings: []error{errTimeout, nil}},
		wantOK:     true,
		wantReason: webfarmv1.ServingReasonServing,
	}, {
		name:        "ping group: no target answering stops serving",
		obs:         Observation{Proxy: map[int32]error{80: nil}, Pings: []error{errTimeout, errTimeout}},
		wantReason:  webfarmv1.ServingReasonPingTargetsUnreachable,
		wantMessage: "none of 2 ping targets answered",
	}, {
		name:        "a frontend failing wins over unreachable ping targets",
		obs:         Observation{Proxy: map[int32]error{80: errRefused}, Pings: []error{errTimeout}},
		wantReason:  webfarmv1.ServingReasonProxyNotAnswering,
		wantMessage: "frontend port 80",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Evaluate(tt.obs)
			if got.OK != tt.wantOK || got.Reason != tt.wantReason || !strings.Contains(got.Message, tt.wantMessage) {
				t.Errorf("Evaluate = %+v, want ok %v, reason %s, message containing %q", got, tt.wantOK, tt.wantReason, tt.wantMessage)
			}
		})
	}
}

var (
	pass      = Check{OK: true, Reason: webfarmv1.ServingReasonServing}
	proxyErr  = Check{Reason: webfarmv1.ServingReasonProxyNotAnswering, Message: "frontend port 80: connection refused"}
	proxyErr2 = Check{Reason: webfarmv1.ServingReasonProxyNotAnswering, Message: "frontend port 80: i/o timeout"}
	linkErr   = Check{Reason: webfarmv1.ServingReasonLinkDown, Message: "link eth0 is down"}
)

func TestTracker(t *testing.T) {
	type step struct {
		check       Check
		wantServing bool
		wantChanged bool
	}
	tests := []struct {
		name  string
		steps []step
	}{{
		name: "starts serving; fall-1 failures do not stop it, the fall-th does",
		steps: []step{
			{proxyErr, true, false},
			{proxyErr, true, false},
			{proxyErr, false, true},
			{proxyErr, false, false},
		},
	}, {
		name: "flapping: a success resets the failures, so it never stops",
		steps: []step{
			{proxyErr, true, false}, {proxyErr, true, false}, {pass, true, false},
			{proxyErr, true, false}, {proxyErr, true, false}, {pass, true, false},
			{linkErr, true, false}, {proxyErr, true, false}, {pass, true, false},
		},
	}, {
		name: "failures of different checks count together",
		steps: []step{
			{linkErr, true, false}, {proxyErr, true, false}, {linkErr, false, true},
		},
	}, {
		name: "not serving: rise successes in a row serve again, a failure between resets them",
		steps: []step{
			{proxyErr, true, false}, {proxyErr, true, false}, {proxyErr, false, true},
			{pass, false, false},
			{proxyErr, false, false},
			{pass, false, false},
			{pass, true, true},
			{pass, true, false},
		},
	}, {
		name: "not serving: a failure for another reason is reported, one for the same reason is not",
		steps: []step{
			{proxyErr, true, false}, {proxyErr, true, false}, {proxyErr, false, true},
			{proxyErr, false, false},
			{proxyErr2, false, false},
			{linkErr, false, true},
			{linkErr, false, false},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := Tracker{Rise: 2, Fall: 3}
			var since time.Time
			for i, s := range tt.steps {
				now := t0.Add(time.Duration(i) * time.Second)
				v, changed := tr.Observe(s.check, now)
				if v.Serving != s.wantServing || changed != s.wantChanged {
					t.Fatalf("step %d (%s): serving %v changed %v, want %v %v", i, s.check.Reason, v.Serving, changed, s.wantServing, s.wantChanged)
				}
				if !v.Serving && !s.check.OK && v.Reason != s.check.Reason {
					t.Errorf("step %d: not serving for %s, want the last failure's reason %s", i, v.Reason, s.check.Reason)
				}
				switch {
				case i == 0 && !v.Since.Equal(now):
					t.Errorf("step 0: since %v, want the first observation", v.Since)
				case i > 0 && changed && s.check.OK != tt.steps[i-1].wantServing && !v.Since.Equal(now):
					t.Errorf("step %d: serving turned %v but since %v stayed", i, v.Serving, v.Since)
				case i > 0 && !changed && !v.Since.Equal(since):
					t.Errorf("step %d: nothing changed but since moved to %v", i, v.Since)
				}
				since = v.Since
			}
		})
	}
}

func TestTrackerZeroRiseFallCountOne(t *testing.T) {
	tr := Tracker{}
	if v, changed := tr.Observe(proxyErr, t0); v.Serving || !changed {
		t.Fatalf("with fall 0 a failure should stop serving at once, got %+v changed %v", v, changed)
	}
	if v, changed := tr.Observe(pass, t0); !v.Serving || !changed {
		t.Fatalf("with rise 0 a success should serve at once, got %+v changed %v", v, changed)
	}
}

var t0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
