package testbed

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// QuietWindow is how long QuietAPI watches steady traffic.
const QuietWindow = 30 * time.Second

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
	tb.say("\n== steady traffic for %s: how often does each front write to the API server?", QuietWindow)
	if err := tb.WaitFor(func() (bool, error) { return tb.votersCaughtUp(ctx) }, readyTimeout); err != nil {
		return r, fmt.Errorf("the farm never settled (every candidate a voter): %w", err)
	}
	// A front that just recovered (its HAProxy restarted, its servers
	// rising through their checks) still reports changes: steady state
	// starts once no FrontNode has changed for a quiet interval.
	if err := tb.waitFrontNodesUnchanged(ctx, quietInterval, 2*time.Minute); err != nil {
		return r, err
	}
	before, err := tb.agentWrites(ctx)
	if err != nil {
		return r, err
	}
	load := StartLoad(LoadOptions{URL: VIPURL("/"), Rate: 20})
	done := time.After(QuietWindow)
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
	most := int(QuietWindow/quietInterval) + 1
	var errs []string
	for _, f := range tb.Fronts() {
		n := int(after[f.Name].total() - before[f.Name].total())
		r.Counts["writes-"+f.Name] = n
		tb.say("   %s wrote %d times in %s (%s)", f.Name, n, QuietWindow, after[f.Name].minus(before[f.Name]))
		if err := r.check(n <= most, f.Name+" API writes in "+QuietWindow.String(), "%d (at most %d)", n, most); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if err := r.check(res.Failed() == 0, "requests during the window", "%d of %d failed", res.Failed(), len(res.Samples)); err != nil {
		errs = append(errs, err.Error())
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

// writeMethods are the API verbs that write.
var writeMethods = []string{"POST", "PUT", "PATCH", "DELETE"}

// writes counts an agent's write requests by method.
type writes map[string]float64

func (w writes) total() float64 {
	var n float64
	for _, v := range w {
		n += v
	}
	return n
}

func (w writes) minus(o writes) string {
	var parts []string
	for _, m := range writeMethods {
		if d := w[m] - o[m]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f", m, d))
		}
	}
	return strings.Join(parts, ", ")
}

// waitFrontNodesUnchanged waits until no FrontNode's resourceVersion has
// changed for quiet, or fails after timeout.
func (tb *Testbed) waitFrontNodesUnchanged(ctx context.Context, quiet, timeout time.Duration) error {
	versions := map[string]string{}
	since := time.Now()
	err := tb.WaitFor(func() (bool, error) {
		for _, f := range tb.Fronts() {
			fn, err := tb.FrontNode(ctx, f.Name)
			if err != nil {
				return false, err
			}
			if versions[f.Name] != fn.ResourceVersion {
				versions[f.Name], since = fn.ResourceVersion, time.Now()
			}
		}
		return time.Since(since) >= quiet, nil
	}, timeout)
	if err != nil {
		return fmt.Errorf("the FrontNodes kept changing for %s: %w", timeout, err)
	}
	return nil
}

// agentWrites is, by front, how many write requests its agent has made to
// the API server, by method (a Lease renewal is a PUT, a status report a
// PATCH).
func (tb *Testbed) agentWrites(ctx context.Context) (map[string]writes, error) {
	out := map[string]writes{}
	for _, f := range tb.Fronts() {
		m, err := f.AgentMetrics(ctx)
		if err != nil {
			return nil, fmt.Errorf("scraping %s's agent: %w", f.Name, err)
		}
		out[f.Name] = writes{}
		for _, method := range writeMethods {
			out[f.Name][method] = m.Sum("webfarm_agent_api_request_duration_seconds_count", `method="`+method+`"`)
		}
	}
	return out, nil
}
