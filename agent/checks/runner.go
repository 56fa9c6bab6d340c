package checks

import (
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// tick bounds how late a check starts after it is due.
const tick = 100 * time.Millisecond

// Check is one check of one FailoverIP, as the agent wants it run.
type Check struct {
	Name              string
	Interval, Timeout time.Duration
	Rise, Fall        int
	// Version changes whenever the check's spec or credentials do: a new
	// version starts over with a new probe and tracker.
	Version string
	// NewProbe makes the probe, once per version.
	NewProbe func() (Probe, error)
}

// Target is a FailoverIP whose checks this node runs.
type Target struct {
	// FailoverIP is "namespace/name".
	FailoverIP string
	Checks     []Check
}

type entryKey struct{ failoverIP, check string }

type entry struct {
	check   Check
	probe   Probe
	tracker Tracker
	next    time.Time
	running bool
}

type outcome struct {
	key     entryKey
	version string
	message string
	err     error
}

// Runner runs every check at its interval, one run of a check at a time,
// and reports the states after hysteresis whenever one changes.
type Runner struct {
	Clock clock.WithTicker

	mu      sync.Mutex
	targets []Target
	changed chan struct{}

	entries map[entryKey]*entry
	results chan outcome
}

// NewRunner returns a runner on clk.
func NewRunner(clk clock.WithTicker) *Runner {
	return &Runner{Clock: clk, changed: make(chan struct{}, 1), entries: map[entryKey]*entry{}, results: make(chan outcome, 16)}
}

// Set replaces the targets; the running loop picks them up at once.
func (r *Runner) Set(targets []Target) {
	r.mu.Lock()
	r.targets = targets
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Run runs the checks until ctx is done, calling report with the states of
// every target, sorted, whenever they change.
func (r *Runner) Run(ctx context.Context, report func([]webfarmv1.NodeChecksStatus)) {
	t := r.Clock.NewTicker(tick)
	defer t.Stop()
	defer r.closeAll()
	for {
		changed := false
		select {
		case <-ctx.Done():
			return
		case <-r.changed:
			changed = r.sync()
		case o := <-r.results:
			changed = r.record(o)
		case <-t.C():
		}
		r.startDue(ctx)
		if changed {
			report(r.statuses())
		}
	}
}

// sync makes the entries follow the targets; it tells whether any came
// or went.
func (r *Runner) sync() bool {
	r.mu.Lock()
	targets := r.targets
	r.mu.Unlock()
	want := map[entryKey]Check{}
	for _, t := range targets {
		for _, c := range t.Checks {
			want[entryKey{t.FailoverIP, c.Name}] = c
		}
	}
	changed := false
	for k, e := range r.entries {
		if c, ok := want[k]; !ok || c.Version != e.check.Version {
			closeProbe(e.probe)
			delete(r.entries, k)
			changed = true
		}
	}
	now := r.Clock.Now()
	for k, c := range want {
		if r.entries[k] == nil {
			r.entries[k] = &entry{check: c, tracker: Tracker{Rise: c.Rise, Fall: c.Fall}, next: now}
			changed = true
		}
	}
	return changed
}

// record applies the outcome of a run to its tracker, unless the check
// changed meanwhile; it tells whether the state changed.
func (r *Runner) record(o outcome) bool {
	e := r.entries[o.key]
	if e == nil || e.check.Version != o.version {
		return false
	}
	e.running = false
	_, changed := e.tracker.Observe(o.err, o.message, r.Clock.Now())
	return changed
}

// startDue starts, beside the loop, every check that is due and not
// running.
func (r *Runner) startDue(ctx context.Context) {
	now := r.Clock.Now()
	for k, e := range r.entries {
		if e.running || now.Before(e.next) {
			continue
		}
		e.running = true
		e.next = now.Add(e.check.Interval)
		if e.probe == nil {
			p, err := e.check.NewProbe()
			if err != nil {
				go r.deliver(ctx, outcome{key: k, version: e.check.Version, err: err})
				continue
			}
			e.probe = p
		}
		go r.runOnce(ctx, k, e.check, e.probe)
	}
}

func (r *Runner) runOnce(ctx context.Context, k entryKey, c Check, p Probe) {
	rctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	msg, err := p.Run(rctx)
	if err == nil && rctx.Err() != nil {
		err = rctx.Err() // a run that passed late fails
	}
	r.deliver(ctx, outcome{key: k, version: c.Version, message: msg, err: err})
}

func (r *Runner) deliver(ctx context.Context, o outcome) {
	select {
	case r.results <- o:
	case <-ctx.Done():
	}
}

// statuses are the states of every target, sorted by FailoverIP and check.
func (r *Runner) statuses() []webfarmv1.NodeChecksStatus {
	by := map[string]*webfarmv1.NodeChecksStatus{}
	for k, e := range r.entries {
		s := by[k.failoverIP]
		if s == nil {
			s = &webfarmv1.NodeChecksStatus{Name: k.failoverIP}
			by[k.failoverIP] = s
		}
		res := e.tracker.Result()
		since := metav1.NewTime(res.Since.Truncate(time.Second))
		if res.Since.IsZero() {
			since = metav1.NewTime(r.Clock.Now().Truncate(time.Second))
		}
		s.Checks = append(s.Checks, webfarmv1.CheckResult{Name: k.check, State: res.State, Message: truncate(res.Message, 512), LastTransitionTime: &since})
	}
	out := make([]webfarmv1.NodeChecksStatus, 0, len(by))
	for _, s := range by {
		slices.SortFunc(s.Checks, func(a, b webfarmv1.CheckResult) int { return strings.Compare(a.Name, b.Name) })
		states := make([]webfarmv1.CheckState, len(s.Checks))
		for i, c := range s.Checks {
			states[i] = c.State
		}
		s.State = Summary(states)
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b webfarmv1.NodeChecksStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (r *Runner) closeAll() {
	for _, e := range r.entries {
		closeProbe(e.probe)
	}
}

func closeProbe(p Probe) {
	if c, ok := p.(io.Closer); ok {
		_ = c.Close()
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
