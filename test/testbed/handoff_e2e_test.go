package testbed

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestE2EPlannedHandOffTrials drains the VIP's owner under the client's
// steady load (a new connection every 20 ms, 1 s timeout), with the ARP
// watcher, WEBFARM_E2E_TRIALS times (default 5). Every hand-off must move
// the address with no instant of two answerers. The gaps and the failed
// requests (the target is none; see docs/architecture.md for what a busy
// machine still loses) are printed with why each failed, not asserted.
func TestE2EPlannedHandOffTrials(t *testing.T) {
	tb := StartT(t, Options{})
	ctx := context.Background()
	if err := tb.WaitReady(ctx, 2*time.Minute); err != nil {
		t.Fatalf("the farm never served: %v", err)
	}
	n := 5
	if v, err := strconv.Atoi(os.Getenv("WEBFARM_E2E_TRIALS")); err == nil && v > 0 {
		n = v
	}
	trials, err := HandOffTrials(ctx, tb, WebfarmDefaults, n)
	var table strings.Builder
	WriteTrialTable(&table, trials)
	t.Logf("\n%s", table.String())
	if err != nil {
		t.Fatalf("after %d trials: %v", len(trials), err)
	}
	for i, tr := range trials {
		if tr.Err != "" || tr.TwoAnswerers > 0 {
			t.Errorf("hand-off #%d %s -> %s: %d two-answerer instants, error %q", i+1, tr.From, orNone(tr.To), tr.TwoAnswerers, tr.Err)
		}
		if tr.Failed > 0 {
			t.Logf("hand-off #%d %s -> %s: %d of %d requests failed: %s", i+1, tr.From, tr.To, tr.Failed, tr.Requests, strings.Join(tr.Failures, "; "))
		}
	}
}
