package controllers

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-logr/logr/testr"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// conflictCounter counts the controller's writes to FailoverIPs and
// WebFarms, and those the API server refused as conflicts (409).
type conflictCounter struct {
	next              http.RoundTripper
	writes, conflicts atomic.Int64
}

func (c *conflictCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if req.Method == http.MethodGet || !(strings.Contains(req.URL.Path, "/failoverips/") || strings.Contains(req.URL.Path, "/webfarms/")) {
		return resp, err
	}
	c.writes.Add(1)
	if err == nil && resp.StatusCode == http.StatusConflict {
		c.conflicts.Add(1)
	}
	return resp, err
}

// TestEnvtestStatusConflicts: the controller, the only writer of the
// FailoverIP and the WebFarm here, never has a write refused as a
// conflict while the owner renews its Lease in quick succession, as
// agents do during a rollout (each renewal is acknowledged in
// status.ownerRenewal). Before, a write made from a cache that had not
// yet seen the previous one failed, was logged as an error and retried
// after a backoff, which delays the acknowledgement the owner holds on.
func TestEnvtestStatusConflicts(t *testing.T) {
	counter := &conflictCounter{}
	h := startHarnessWith(t, testr.NewWithOptions(t, testr.Options{Verbosity: 0}), func(rt http.RoundTripper) http.RoundTripper {
		counter.next = rt
		return counter
	})
	ns := "conflicts"
	h.activePair(ns, "cn", [2]string{"cn-a", "cn-b"}, [2]string{"10.15.0.1", "10.15.0.2"}, "vip")
	h.createFailoverIP(ns, "vip", "192.0.2.94", "cn-a", false)
	h.failoverIP(ns, "vip", "owned by cn-a", ownerIs("cn-a", 1))
	h.hold("cn-a", ns, "vip", 1)

	const renewals = 60
	before := counter.writes.Load()
	for range renewals {
		h.renew("cn-a")
	}
	h.failoverIP(ns, "vip", "the last renewal acknowledged", func(st *webfarmv1.FailoverIPStatus) error {
		if seen := h.tracker.Seen("cn-a"); st.OwnerRenewal != seen {
			return fmt.Errorf("ownerRenewal %q, last renewal %q", st.OwnerRenewal, seen)
		}
		return nil
	})
	writes := counter.writes.Load() - before
	t.Logf("%d renewals: %d FailoverIP and WebFarm writes, %d conflicts in all", renewals, writes, counter.conflicts.Load())
	if writes == 0 {
		t.Fatal("the counter saw no write: it counts nothing")
	}
	if n := counter.conflicts.Load(); n > 0 {
		t.Errorf("%d writes refused as conflicts, with no other writer", n)
	}
}
