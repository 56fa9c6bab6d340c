package testbed

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"time"
)

// SoakResult is what a no-false-fence soak saw: with nothing failing, the
// address must never move, no front may fence, and no two fronts may
// answer for it at once.
type SoakResult struct {
	Settings WebfarmSettings
	Duration time.Duration
	CPUHogs  int
	// OwnerChanges counts the FailoverIP's status.transitions during the
	// soak; EpochsFrom and EpochsTo bound its epochs (re-elections of the
	// same owner raise the epoch without a change).
	OwnerChanges         int64
	EpochsFrom, EpochsTo int64
	// Fences counts the agents' reports turning Fenced
	// (webfarm_failover_transitions_total{state="Fenced"}).
	Fences int
	// TwoAnswerers counts the pairs of ARP claims from two fronts less than
	// half a probe interval apart.
	TwoAnswerers int
	// Requests and Failed count the steady load's requests;
	// LongestRequestGap is its longest run of failures, and LastFailures
	// the first few.
	Requests, Failed  int
	LongestRequestGap time.Duration
	FirstFailures     []string
	// AgentWrites counts each front's API writes (Lease and status).
	AgentWrites        map[string]int
	WritesPerFrontMean float64
	OwnerAtStart       string
	OwnerAtEnd         string
	LoadRate           int
	CPUsOnThisMachine  int
}

// FalseFences is how many things went wrong that nothing caused.
func (r SoakResult) FalseFences() int { return int(r.OwnerChanges) + r.Fences }

// SoakFailover holds the farm at settings s under a steady load for d, with
// hogs processes burning CPU on the machine, and counts owner changes,
// fences and instants of two answerers: a fast setting must not mistake a
// loaded machine for a dead front (issue 9: 30 minutes at the fastest
// settings on a loaded 2-core machine).
func SoakFailover(ctx context.Context, tb *Testbed, s WebfarmSettings, d time.Duration, hogs int) (SoakResult, error) {
	res := SoakResult{Settings: s, Duration: d, CPUHogs: hogs, LoadRate: benchRate, CPUsOnThisMachine: runtime.NumCPU()}
	if err := tb.SetFailoverTimings(ctx, s); err != nil {
		return res, err
	}
	if err := tb.WaitFor(func() (bool, error) { return tb.votersCaughtUp(ctx) }, readyTimeout); err != nil {
		return res, fmt.Errorf("the farm never settled at %s: %w", s, err)
	}
	before, err := tb.soakCounters(ctx)
	if err != nil {
		return res, err
	}
	res.OwnerAtStart, res.EpochsFrom = before.owner, before.epoch
	watch, err := tb.WatchARP()
	if err != nil {
		return res, err
	}
	defer watch.Stop()
	stopHogs := burnCPU(hogs)
	defer stopHogs()
	tb.say("\n== soak: %s for %s under %d requests/s, %d CPU hogs on %d CPUs; owner %s at epoch %d",
		s, d, benchRate, hogs, res.CPUsOnThisMachine, before.owner, before.epoch)
	load := StartLoad(LoadOptions{URL: VIPURL("/"), Rate: benchRate})
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	lr := load.Stop()
	stopHogs()
	watch.Stop()
	after, err := tb.soakCounters(ctx)
	if err != nil {
		return res, err
	}
	res.OwnerAtEnd, res.EpochsTo = after.owner, after.epoch
	res.OwnerChanges = after.transitions - before.transitions
	res.Fences = int(after.fences - before.fences)
	res.TwoAnswerers = len(watch.Conflicts(probeInterval / 2))
	res.Requests, res.Failed, res.LongestRequestGap = len(lr.Samples), lr.Failed(), lr.Gap()
	res.FirstFailures = lr.FirstErrors(5)
	res.AgentWrites = map[string]int{}
	for name, n := range after.writes {
		res.AgentWrites[name] = int(n.total() - before.writes[name].total())
		res.WritesPerFrontMean += float64(res.AgentWrites[name]) / float64(len(after.writes))
	}
	return res, ctx.Err()
}

// soakCounters are the running totals a soak compares.
type soakCounters struct {
	owner              string
	epoch, transitions int64
	fences             float64
	writes             map[string]writes
}

func (tb *Testbed) soakCounters(ctx context.Context) (soakCounters, error) {
	fip, err := tb.FailoverIP(ctx)
	if err != nil {
		return soakCounters{}, err
	}
	c := soakCounters{owner: fip.Status.Owner, epoch: fip.Status.Epoch, transitions: fip.Status.Transitions}
	for _, f := range tb.Fronts() {
		m, err := f.AgentMetrics(ctx)
		if err != nil {
			return c, fmt.Errorf("scraping %s's agent: %w", f.Name, err)
		}
		c.fences += m.Sum("webfarm_failover_transitions_total", `state="Fenced"`)
	}
	c.writes, err = tb.agentWrites(ctx)
	return c, err
}

// burnCPU starts n processes that spin on the machine (no network, no
// files) and returns what stops them; stopping twice is harmless.
func burnCPU(n int) (stop func()) {
	var cmds []*exec.Cmd
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		if cmd.Start() == nil {
			cmds = append(cmds, cmd)
		}
	}
	return func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		cmds = nil
	}
}

// WriteSoak prints r for people.
func WriteSoak(r SoakResult) string {
	return fmt.Sprintf(`webfarm at %s, nothing failing, for %s
  machine: %d CPUs, %d CPU hogs added, steady load %d requests/s
  owner: %s at epoch %d -> %s at epoch %d
  owner changes: %d    fences: %d    instants of two answerers: %d
  requests: %d, failed %d (longest run of failures %s) %v
  API writes per front: %v (mean %.1f, %.1f s between writes)
`, r.Settings, r.Duration, r.CPUsOnThisMachine, r.CPUHogs, r.LoadRate,
		r.OwnerAtStart, r.EpochsFrom, r.OwnerAtEnd, r.EpochsTo,
		r.OwnerChanges, r.Fences, r.TwoAnswerers,
		r.Requests, r.Failed, round(r.LongestRequestGap), r.FirstFailures,
		r.AgentWrites, r.WritesPerFrontMean, secondsBetween(r.Duration, r.WritesPerFrontMean))
}

func secondsBetween(d time.Duration, n float64) float64 {
	if n == 0 {
		return d.Seconds()
	}
	return d.Seconds() / n
}
