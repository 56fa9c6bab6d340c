package testbed

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"time"

	"github.com/webfarm/webfarm/agent/priority"
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
	// half a probe interval apart; TwoAnswerersSeen describes each.
	TwoAnswerers     int
	TwoAnswerersSeen []string
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
	// Anchor is keepalived on the same fronts, for KeepalivedVIP, through
	// the same soak: with nothing failing, it must not move its address
	// either. AnchorMoves counts its fronts entering MASTER after the
	// first; AnchorTwoAnswerers its instants of two answerers.
	Anchor             KeepalivedSettings
	AnchorMoves        int
	AnchorTwoAnswerers int
	// LongestStall is the longest a thread at the agents' priority slept
	// beyond its 1 ms; Stalls counts those beyond stallThreshold.
	LongestStall time.Duration
	Stalls       int
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
	before, err := tb.soakCountersPatiently(ctx)
	if err != nil {
		return res, err
	}
	res.OwnerAtStart, res.EpochsFrom = before.owner, before.epoch
	watch, err := tb.WatchARP()
	if err != nil {
		return res, err
	}
	defer watch.Stop()
	anchor, err := tb.startSoakAnchor(&res)
	if err != nil {
		return res, err
	}
	defer anchor.stop()
	probe := startStallProbe(priority.DefaultNice)
	defer probe.Stop()
	stopHogs := burnCPU(hogs)
	defer stopHogs()
	tb.say("\n== soak: %s for %s under %d requests/s, %d CPU hogs on %d CPUs; owner %s at epoch %d; keepalived %s beside it",
		s, d, benchRate, hogs, res.CPUsOnThisMachine, before.owner, before.epoch, res.Anchor)
	load := StartLoad(LoadOptions{URL: VIPURL("/"), Rate: benchRate})
	started := time.Now()
	tb.soakProgress(ctx, d, before, load, anchor)
	lr := load.Stop()
	stopHogs()
	watch.Stop()
	res.LongestStall, res.Stalls = probe.Stop()
	if err := anchor.finish(&res); err != nil {
		return res, err
	}
	res.Duration = time.Since(started).Round(time.Second)
	// Read even when interrupted: what a stopped soak saw is still worth
	// printing.
	after, err := tb.soakCountersPatiently(context.WithoutCancel(ctx))
	if err != nil {
		return res, err
	}
	res.OwnerAtEnd, res.EpochsTo = after.owner, after.epoch
	res.OwnerChanges = after.transitions - before.transitions
	res.Fences = int(after.fences - before.fences)
	conflicts := watch.Conflicts(probeInterval / 2)
	res.TwoAnswerers, res.TwoAnswerersSeen = len(conflicts), describeConflicts(conflicts)
	res.Requests, res.Failed, res.LongestRequestGap = len(lr.Samples), lr.Failed(), lr.Gap()
	res.FirstFailures = lr.FirstErrors(5)
	res.AgentWrites = map[string]int{}
	for name, n := range after.writes {
		res.AgentWrites[name] = int(n.total() - before.writes[name].total())
		res.WritesPerFrontMean += float64(res.AgentWrites[name]) / float64(len(after.writes))
	}
	return res, ctx.Err()
}

// soakProgress waits for d or ctx, printing every minute what the soak saw
// so far, so that a watcher can stop a soak that already failed.
func (tb *Testbed) soakProgress(ctx context.Context, d time.Duration, before soakCounters, load *Load, anchor *soakAnchor) {
	end := time.After(d)
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for start := time.Now(); ; {
		select {
		case <-end:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now, err := tb.soakCounters(ctx)
		if err != nil {
			tb.say("   %s: counters unread: %v", time.Since(start).Round(time.Minute), err)
			continue
		}
		lr := load.Result()
		moves, _ := anchor.moves()
		tb.say("   %s: owner %s at epoch %d, owner changes %d, fences %.0f, requests failed %d of %d; keepalived moves %d",
			time.Since(start).Round(time.Minute), now.owner, now.epoch,
			now.transitions-before.transitions, now.fences-before.fences, lr.Failed(), len(lr.Samples), moves)
	}
}

// describeConflicts says, for each pair of claims from two fronts, when,
// who and how: a reply to the watcher's probe, or an announcement.
func describeConflicts(pairs [][2]ARPEvent) []string {
	var out []string
	for _, p := range pairs {
		out = append(out, fmt.Sprintf("%s %s (%s), then %s (%s) %s later",
			p[0].Time.UTC().Format("15:04:05.000"), p[0].Who(), claimKind(p[0]), p[1].Who(), claimKind(p[1]), round(p[1].Time.Sub(p[0].Time))))
	}
	return out
}

// soakAnchorSettings are keepalived's fastest usual settings: VRRP version
// 3 adverts every 100 ms, as webfarm's keepalive, so that its backups give
// the master up after about 360 ms of silence, near webfarm's 300 ms
// deadtime.
var soakAnchorSettings = KeepalivedSettings{AdvertInt: 100 * time.Millisecond}

// soakAnchor is keepalived beside the soaked farm, and what it saw.
type soakAnchor struct {
	farm    *keepalivedFarm
	watch   *ARPWatcher
	initial int // MASTER entries before the soak
}

// startSoakAnchor starts keepalived on every front with its own address
// and waits until one front holds it.
func (tb *Testbed) startSoakAnchor(res *SoakResult) (*soakAnchor, error) {
	res.Anchor = soakAnchorSettings
	farm, err := tb.startKeepalived(soakAnchorSettings)
	if err != nil {
		return nil, err
	}
	a := &soakAnchor{farm: farm}
	if a.initial, err = farm.masterEntries(); err != nil {
		return nil, errors.Join(err, farm.Stop())
	}
	if a.watch, err = tb.WatchARPFor(KeepalivedVIP); err != nil {
		return nil, errors.Join(err, farm.Stop())
	}
	return a, nil
}

// moves counts keepalived's fronts entering MASTER since the soak began.
func (a *soakAnchor) moves() (int, error) {
	n, err := a.farm.masterEntries()
	return n - a.initial, err
}

// finish records what keepalived did during the soak.
func (a *soakAnchor) finish(res *SoakResult) error {
	a.watch.Stop()
	res.AnchorTwoAnswerers = len(a.watch.Conflicts(probeInterval / 2))
	var err error
	res.AnchorMoves, err = a.moves()
	return err
}

// stop ends keepalived and its watcher; stopping twice is harmless.
func (a *soakAnchor) stop() {
	a.watch.Stop()
	_ = a.farm.Stop()
}

// soakCounters are the running totals a soak compares.
type soakCounters struct {
	owner              string
	epoch, transitions int64
	fences             float64
	writes             map[string]writes
}

// soakCountersPatiently reads the counters, trying again for a while: on
// the loaded machine a soak runs on, the API server may time a read out
// once, and half an hour of soak must not be lost to it.
func (tb *Testbed) soakCountersPatiently(ctx context.Context) (soakCounters, error) {
	var c soakCounters
	var last error
	err := tb.WaitFor(func() (bool, error) {
		c, last = tb.soakCounters(ctx)
		return last == nil, ctx.Err()
	}, 2*time.Minute)
	if err != nil && last != nil {
		return c, last
	}
	return c, err
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
  two answerers: %v
keepalived at %s on the same fronts, beside it: moves %d, instants of two answerers %d
machine stalls: a 1 ms sleep at the agents' priority overslept by up to %s, %d times beyond %s
`, r.Settings, r.Duration, r.CPUsOnThisMachine, r.CPUHogs, r.LoadRate,
		r.OwnerAtStart, r.EpochsFrom, r.OwnerAtEnd, r.EpochsTo,
		r.OwnerChanges, r.Fences, r.TwoAnswerers,
		r.Requests, r.Failed, round(r.LongestRequestGap), r.FirstFailures,
		r.AgentWrites, r.WritesPerFrontMean, secondsBetween(r.Duration, r.WritesPerFrontMean),
		r.TwoAnswerersSeen, r.Anchor, r.AnchorMoves, r.AnchorTwoAnswerers,
		round(r.LongestStall), r.Stalls, stallThreshold)
}

func secondsBetween(d time.Duration, n float64) float64 {
	if n == 0 {
		return d.Seconds()
	}
	return d.Seconds() / n
}
