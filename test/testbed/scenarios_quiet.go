package testbed

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// quietWindow is how long QuietAPI watches steady traffic.
const quietWindow = 30 * time.Second

// quietInterval is the least interval between two API writes of one front in
// steady state (issue 9: Lease and status together).
const quietInterval = 10 * time.Second

// QuietAPI: under steady traffic, with nothing failing, each agent writes to
// the API server at most once every 10 s, Lease renewals and FrontNode
// status together — session counts change with every request and must not
// cause writes. It counts every agent's write requests (its
// webfarm_agent_api_request_duration_seconds by method) over 30 s.
func QuietAPI(ctx context.Context, tb *Testbed) (*Result, error) {
	r := newResult("quiet API")
	tb.say("\n== steady traffic for %s: how often does each front write to the API server?", quietWindow)
	if err := tb.WaitFor(func() (bool, error) { return tb.votersCaughtUp(ctx) }, readyTimeout); err != nil {
		return r, fmt.Errorf("the farm never settled (every candidate a voter): %w", err)
	}
	before, err := tb.agentWrites(ctx)
	if err != nil {
		return r, err
	}
	load := StartLoad(LoadOptions{URL: VIPURL("/quiet"), Rate: 20})
	done := time.After(quietWindow)
	select {
	case <-done:
	case <-ctx.Done():
		load.Stop()
		return r, ctx.Err()
	}
	res := load.Stop()
	after, err := tb.agentWrites(ctx)
	if err != nil {
		return r, err
	}
	if err := r.check(res.Failed() == 0, "requests during the window", "%d of %d failed", res.Failed(), len(res.Samples)); err != nil {
		return r, err
	}
	most := int(quietWindow/quietInterval) + 1
	var errs []string
	for _, f := range tb.Fronts() {
		n := int(after[f.Name] - before[f.Name])
		r.Counts["writes-"+f.Name] = n
		tb.say("   %s wrote %d times in %s", f.Name, n, quietWindow)
		if err := r.check(n <= most, f.Name+" API writes in "+quietWindow.String(), "%d (at most %d)", n, most); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return r, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return r, nil
}

// votersCaughtUp tells whether the farm has settled: it serves, and every
// candidate is a voter of the current epoch, so that the owner needs its
// Lease no faster than every 10 s.
func (tb *Testbed) votersCaughtUp(ctx context.Context) (bool, error) {
	if why := tb.notReady(ctx); why != "" {
		return false, nil
	}
	fip, err := tb.FailoverIP(ctx)
	if err != nil {
		return false, err
	}
	st := fip.Status
	return st.Owner != "" && len(st.Candidates) == len(tb.Fronts()) && slices.Equal(st.Candidates, st.Voters), nil
}

// agentWrites is, by front, how many write requests (POST, PUT, PATCH,
// DELETE) its agent has made to the API server.
func (tb *Testbed) agentWrites(ctx context.Context) (map[string]float64, error) {
	out := map[string]float64{}
	for _, f := range tb.Fronts() {
		m, err := f.AgentMetrics(ctx)
		if err != nil {
			return nil, fmt.Errorf("scraping %s's agent: %w", f.Name, err)
		}
		for _, method := range []string{"POST", "PUT", "PATCH", "DELETE"} {
			out[f.Name] += m.Sum("webfarm_agent_api_request_duration_seconds_count", `method="`+method+`"`)
		}
	}
	return out, nil
}
