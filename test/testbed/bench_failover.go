package testbed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Trial is one measured move of a floating address under the client's
// probes: the steady load and the ARP watcher, both in the client
// namespace.
type Trial struct {
	System   string // "keepalived" or "webfarm"
	Settings string
	Kind     string // TrialHardLoss or TrialHandOff
	From, To string
	// LoadGap is the longest run of failed requests of the steady load
	// (last success before it to first success after, by send time).
	LoadGap time.Duration
	// ARPGap is the time from the last ARP claim of the address by the old
	// holder to the first by another front; ARPGapOK is false when no
	// other front claimed it.
	ARPGap   time.Duration
	ARPGapOK bool
	Failed   int
	Requests int
	// FailedAfterMove counts the failed requests sent after the first
	// answered one after the act (moveFailures): those a dead front still
	// taking clients costs.
	FailedAfterMove int
	// TwoAnswerers counts the pairs of claims for the address by two MACs
	// less than half a probe interval apart (ARPWatcher.Conflicts).
	TwoAnswerers int
	// Claims is the sequence of fronts seen claiming the address
	// (ARPWatcher.Holders).
	Claims []string
	// Failures describes each failed request: when it was sent, from the
	// act that moved the address, how long it took and why it failed.
	Failures []string
	// Timeline places the move in time, from the act: the controller's
	// and the agents' decisions, the removal, the take-over and the ARP
	// frames (Testbed.timeline).
	Timeline []string
	// Err says why the trial did not complete ("" when it did).
	Err string
}

// The kinds of trial.
const (
	// TrialHardLoss kills the holder as HardLoss does: every process of its
	// namespace, and its link down.
	TrialHardLoss = "hard loss"
	// TrialHandOff drains the holder (webfarm only: keepalived has no
	// planned hand-off short of stopping it).
	TrialHandOff = "planned hand-off"
)

// benchRate is the steady load's rate in the trials (requests per second):
// a 20 ms resolution for the load gap.
const benchRate = 50

// WebfarmSettings are the FailoverIP's timings.
type WebfarmSettings struct {
	Name                       string
	Keepalive, Deadtime, Guard time.Duration
}

func (s WebfarmSettings) String() string {
	return fmt.Sprintf("%s: keepalive %s, deadtime %s, guard %s", s.Name, s.Keepalive, s.Deadtime, s.Guard)
}

// The settings the failover benchmark compares.
var (
	// WebfarmDefaults are the CRD's defaults (the samples keep the original
	// setup's slower Heartbeat timings).
	WebfarmDefaults = WebfarmSettings{"defaults", 200 * time.Millisecond, 700 * time.Millisecond, 150 * time.Millisecond}
	// WebfarmFastest are the shortest timings the CRD accepts.
	WebfarmFastest = WebfarmSettings{"fastest", 100 * time.Millisecond, 300 * time.Millisecond, 50 * time.Millisecond}
	// KeepalivedDefault is keepalived's default advert_int.
	KeepalivedDefault = KeepalivedSettings{AdvertInt: time.Second}
	// KeepalivedFast is the fastest advert_int keepalived users run
	// (VRRPv3 centiseconds; shorter is allowed but not a usual setting).
	KeepalivedFast = KeepalivedSettings{AdvertInt: 100 * time.Millisecond}
)

// BenchFailover runs the failover comparison on a running farm: n
// hard-loss trials of keepalived at each of its settings (on
// KeepalivedVIP, while the webfarm agents keep the VIP), then n hard-loss
// and n planned hand-off trials of webfarm at each of its settings. It
// returns every trial, also those done before an error that stopped it.
func BenchFailover(ctx context.Context, tb *Testbed, n int) ([]Trial, error) {
	return benchFailover(ctx, tb, n, []KeepalivedSettings{KeepalivedFast, KeepalivedDefault})
}

// BenchWebfarm runs BenchFailover's webfarm trials alone.
func BenchWebfarm(ctx context.Context, tb *Testbed, n int) ([]Trial, error) {
	return benchFailover(ctx, tb, n, nil)
}

func benchFailover(ctx context.Context, tb *Testbed, n int, keepalived []KeepalivedSettings) ([]Trial, error) {
	var trials []Trial
	for _, s := range keepalived {
		got, err := tb.benchKeepalived(ctx, s, n)
		trials = append(trials, got...)
		if err != nil {
			return trials, fmt.Errorf("keepalived %s: %w", s, err)
		}
	}
	for _, s := range []WebfarmSettings{WebfarmDefaults, WebfarmFastest} {
		got, err := tb.benchWebfarm(ctx, s, n)
		trials = append(trials, got...)
		if err != nil {
			return trials, fmt.Errorf("webfarm %s: %w", s, err)
		}
	}
	return trials, nil
}

func (tb *Testbed) benchKeepalived(ctx context.Context, s KeepalivedSettings, n int) (trials []Trial, err error) {
	tb.say("\n== keepalived (%s) on every front, for %s; the agents leave dead fronts to HAProxy's checks", s, KeepalivedVIP)
	if err := tb.ChecksOnly(ctx, true); err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, tb.ChecksOnly(ctx, false)) }()
	kf, err := tb.startKeepalived(s)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, kf.Stop()) }()
	for i := range n {
		if err := ctx.Err(); err != nil {
			return trials, err
		}
		from, err := kf.waitHolder("")
		if err != nil {
			return trials, err
		}
		t := tb.trial(ctx, "keepalived", s.String(), TrialHardLoss, KeepalivedVIP, from,
			func() error { return tb.Front(from).Crash() },
			func() (string, error) { return kf.movedFrom(from) })
		trials = append(trials, t)
		tb.sayTrial(i, t)
		if err := tb.Front(from).Recover(); err != nil {
			return trials, err
		}
		if err := kf.restart(from); err != nil {
			return trials, err
		}
		if err := tb.WaitReady(ctx, readyTimeout); err != nil {
			return trials, err
		}
	}
	return trials, nil
}

// ChecksOnly restarts every agent with or without --checks-only, so that
// keepalived's trials run HAProxy as a keepalived user would: the same
// configuration, without the agents marking dead fronts down. The agents
// keep running HAProxy and the webfarm VIP meanwhile.
func (tb *Testbed) ChecksOnly(ctx context.Context, on bool) error {
	for _, f := range tb.fronts {
		if f.agent == nil {
			continue
		}
		if err := f.agent.RestartChecksOnly(on); err != nil {
			return fmt.Errorf("restarting the agent of %s: %w", f.Name, err)
		}
	}
	return tb.WaitReady(ctx, readyTimeout)
}

// movedFrom returns the one front other than old that holds the address,
// "" while there is none. A crashed old holder keeps the address on its
// link, down: it does not count.
func (kf *keepalivedFarm) movedFrom(old string) (string, error) {
	holders, err := kf.holders()
	holders = slices.DeleteFunc(holders, func(h string) bool { return h == old })
	if err != nil || len(holders) != 1 {
		return "", err
	}
	return holders[0], nil
}

func (tb *Testbed) benchWebfarm(ctx context.Context, s WebfarmSettings, n int) ([]Trial, error) {
	tb.say("\n== webfarm (%s), for %s", s, VIP)
	if err := tb.SetFailoverTimings(ctx, s); err != nil {
		return nil, err
	}
	var trials []Trial
	for _, k := range []webfarmTrialKind{tb.hardLoss(), tb.handOff()} {
		got, err := tb.webfarmTrials(ctx, s, k, n)
		trials = append(trials, got...)
		if err != nil {
			return trials, err
		}
	}
	return trials, nil
}

// HandOffTrials runs n planned hand-off trials of webfarm at settings s,
// alone: the narrow run of the bench's hand-off line.
func HandOffTrials(ctx context.Context, tb *Testbed, s WebfarmSettings, n int) ([]Trial, error) {
	return WebfarmTrials(ctx, tb, s, TrialHandOff, n)
}

// WebfarmTrials runs n trials of webfarm of one kind (TrialHardLoss or
// TrialHandOff) at settings s, alone: the narrow run of one line of the
// bench.
func WebfarmTrials(ctx context.Context, tb *Testbed, s WebfarmSettings, kind string, n int) ([]Trial, error) {
	k := tb.handOff()
	switch kind {
	case TrialHandOff:
	case TrialHardLoss:
		k = tb.hardLoss()
	default:
		return nil, fmt.Errorf("no trial of kind %q", kind)
	}
	tb.say("\n== webfarm (%s), for %s: %s only", s, VIP, kind)
	if err := tb.SetFailoverTimings(ctx, s); err != nil {
		return nil, err
	}
	return tb.webfarmTrials(ctx, s, k, n)
}

// webfarmTrialKind is how a kind of trial moves the address away from its
// owner, and how the owner comes back afterwards.
type webfarmTrialKind struct {
	kind    string
	act     func(owner string) error
	recover func(owner string) error
}

func (tb *Testbed) hardLoss() webfarmTrialKind {
	return webfarmTrialKind{TrialHardLoss,
		func(owner string) error { return tb.Front(owner).Crash() },
		func(owner string) error { return tb.Front(owner).Recover() }}
}

func (tb *Testbed) handOff() webfarmTrialKind {
	return webfarmTrialKind{TrialHandOff,
		func(owner string) error { return tb.Drain(owner, true) },
		func(owner string) error { return tb.Drain(owner, false) }}
}

func (tb *Testbed) webfarmTrials(ctx context.Context, s WebfarmSettings, k webfarmTrialKind, n int) ([]Trial, error) {
	var trials []Trial
	for i := range n {
		if err := ctx.Err(); err != nil {
			return trials, err
		}
		owner, err := tb.Owner(ctx)
		if err != nil {
			return trials, err
		}
		t := tb.trial(ctx, "webfarm", s.String(), k.kind, VIP, owner,
			func() error { return k.act(owner) },
			func() (string, error) { return tb.vipMovedFrom(ctx, owner) })
		trials = append(trials, t)
		tb.sayTrial(i, t)
		if err := k.recover(owner); err != nil {
			return trials, err
		}
		if err := tb.WaitReady(ctx, readyTimeout); err != nil {
			return trials, err
		}
	}
	return trials, nil
}

// vipMovedFrom returns the front other than old that owns the VIP and has
// it on its link, "" while there is none.
func (tb *Testbed) vipMovedFrom(ctx context.Context, old string) (string, error) {
	o, err := tb.Owner(ctx)
	if err != nil || o == old || o == "" {
		return "", err
	}
	held, err := tb.Front(o).HoldsVIP()
	if err != nil || !held {
		return "", err
	}
	return o, nil
}

// SetFailoverTimings patches the sample FailoverIP's timings with kubectl
// and waits until the farm serves again.
func (tb *Testbed) SetFailoverTimings(ctx context.Context, s WebfarmSettings) error {
	if err := tb.patchFailoverTimings(s); err != nil {
		return err
	}
	return tb.WaitReady(ctx, readyTimeout)
}

// patchFailoverTimings patches the sample FailoverIP's timings with kubectl.
func (tb *Testbed) patchFailoverTimings(s WebfarmSettings) error {
	patch := fmt.Sprintf(`{"spec":{"keepalive":%q,"deadtime":%q,"guard":%q}}`, s.Keepalive, s.Deadtime, s.Guard)
	_, err := tb.Kubectl("patch", "failoverips.webfarm.io", FailoverIPName, "-n", SamplesNamespace, "--type", "merge", "-p", patch)
	return err
}

// trial measures one move of address away from the front from: it starts
// the probes, does act, and waits for movedTo to name the new holder and
// for the load to be served again. A trial that fails says why in Err.
func (tb *Testbed) trial(ctx context.Context, system, settings, kind, address, from string, act func() error, movedTo func() (string, error)) Trial {
	t := Trial{System: system, Settings: settings, Kind: kind, From: from}
	p, err := tb.startProbes(address, from)
	if err != nil {
		t.Err = err.Error()
		return t
	}
	marks := tb.markLogs()
	acted := time.Now()
	err = act()
	if err == nil {
		err = WaitFor(func() (bool, error) {
			var err error
			t.To, err = movedTo()
			return t.To != "", err
		}, changeTimeout)
	}
	if err == nil {
		// Answers after the move for as long as HAProxy's checks would
		// take to find a dead front.
		err = waitOKAfter(p.load, time.Now(), answersFor(benchRate, afterMoveWatch))
	}
	if err != nil {
		t.Err = fmt.Sprintf("the address did not leave %s: %v", from, err)
	}
	res := p.stop(&t, acted)
	_, t.FailedAfterMove = moveFailures(res, acted, firstClaim(p.arp.Events(), from, acted))
	t.Timeline = tb.timeline(marks, acted, p.arp, from)
	return t
}

// probeURL is what the steady load asks for through address: HAProxy's
// frontend on the webfarm VIP; each front's web server itself on
// KeepalivedVIP, since HAProxy binds only the farm's failover addresses
// (as a keepalived user would bind HAProxy to the VIP, the trial then
// measures the same move of an address in front of a server that
// answers).
func probeURL(address string) string {
	if address == KeepalivedVIP {
		return fmt.Sprintf("http://%s:%d/", address, WebPort)
	}
	return "http://" + address + "/"
}

// probes are the client's steady load and ARP watcher for one address.
type probes struct {
	load *Load
	arp  *ARPWatcher
	from string
}

// startProbes starts the load and the watcher and waits until the load is
// served and the watcher has seen the holder from claim the address, so
// that both gaps have a start.
func (tb *Testbed) startProbes(address, from string) (*probes, error) {
	arp, err := tb.WatchARPFor(address)
	if err != nil {
		return nil, err
	}
	p := &probes{arp: arp, from: from, load: StartLoad(LoadOptions{URL: probeURL(address), Rate: benchRate})}
	if err := waitServedBy(p.load, "", time.Time{}); err != nil {
		p.stop(&Trial{}, time.Now())
		return nil, err
	}
	err = WaitFor(func() (bool, error) {
		return slices.ContainsFunc(arp.Events(), func(e ARPEvent) bool { return e.Front == from }), nil
	}, 5*time.Second)
	if err != nil {
		p.stop(&Trial{}, time.Now())
		return nil, fmt.Errorf("the ARP watcher never saw %s claim %s: %w", from, address, err)
	}
	return p, nil
}

// stop ends the probes, records their figures in t and returns the load's
// samples.
func (p *probes) stop(t *Trial, acted time.Time) LoadResult {
	res := p.load.Stop()
	p.arp.Stop()
	t.LoadGap, t.Failed, t.Requests = res.Gap(), res.Failed(), len(res.Samples)
	t.ARPGap, t.ARPGapOK = arpGap(p.arp.Events(), p.from, acted)
	t.TwoAnswerers = len(p.arp.Conflicts(probeInterval / 2))
	t.Claims = p.arp.Holders()
	t.Failures = res.Failures(acted)
	return res
}

// arpGap is the time from the last claim by front from to the first claim
// by another MAC after since (from since itself when from never claimed
// the address); ok is false when no other MAC claimed it after since.
// The events are in capture order.
func arpGap(events []ARPEvent, from string, since time.Time) (gap time.Duration, ok bool) {
	var last time.Time
	for _, e := range events {
		if e.Front == from {
			last = e.Time
			continue
		}
		if e.Time.After(since) {
			if last.IsZero() {
				last = since
			}
			return e.Time.Sub(last), true
		}
	}
	return 0, false
}

func (tb *Testbed) sayTrial(i int, t Trial) {
	arp := "none"
	if t.ARPGapOK {
		arp = round(t.ARPGap).String()
	}
	tb.say("   %s #%d: %s -> %s: load gap %s, ARP gap %s, %d of %d requests failed (%d after the move), %d two-answerer instants%s",
		t.Kind, i+1, t.From, orNone(t.To), round(t.LoadGap), arp, t.Failed, t.Requests, t.FailedAfterMove, t.TwoAnswerers, errSuffix(t.Err))
	for _, f := range t.Failures {
		tb.say("      failed: %s", f)
	}
	for _, e := range t.Timeline {
		tb.say("      %s", e)
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func errSuffix(s string) string {
	if s == "" {
		return ""
	}
	return "; FAILED: " + s
}
