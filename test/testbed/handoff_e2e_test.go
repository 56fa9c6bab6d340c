package testbed

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestE2EPlannedHandOffNoFailedRequests drains the VIP's owner under the
// client's steady load (a new connection every 20 ms, 1 s timeout), with
// the ARP watcher, WEBFARM_E2E_TRIALS times (default 5): each hand-off
// must fail no request and show no instant of two answerers. The gaps are
// printed, not asserted.
func TestE2EPlannedHandOffNoFailedRequests(t *testing.T) {
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
		if tr.Err != "" || tr.Failed > 0 || tr.TwoAnswerers > 0 {
			t.Errorf("hand-off #%d %s -> %s: %d of %d requests failed %v, %d two-answerer instants, error %q",
				i+1, tr.From, orNone(tr.To), tr.Failed, tr.Requests, tr.Failures, tr.TwoAnswerers, tr.Err)
		}
	}
}
