package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// DeadFrontScenarios are the trials of a dead front under a steady load of
// new sessions at 100 requests/s with a 300 ms client timeout, with the ARP
// watcher: the owner lost, a non-owner lost, a web server hung on a live
// node. They report the failed requests; the owner's loss must cost none
// after the new owner first answers.
func DeadFrontScenarios() []Scenario {
	return []Scenario{
		{"owner lost under load", OwnerLostUnderLoad},
		{"non-owner lost under load", NonOwnerLostUnderLoad},
		{"web server hung", WebServerHung},
	}
}

// The dead-front trials' load: new sessions, and a client whose patience is
// short enough that a request hanging on a dead front counts as failed.
const (
	deadFrontRate     = 100
	deadFrontPatience = 300 * time.Millisecond
	// handful is how many requests a non-owner's loss may cost: those
	// already sent to it when it died.
	handful = 5
)

// loadUnderWatch is the dead-front trials' steady load and ARP watcher.
type loadUnderWatch struct {
	load *Load
	arp  *ARPWatcher
}

func (tb *Testbed) startLoadUnderWatch() (*loadUnderWatch, error) {
	arp, err := tb.WatchARP()
	if err != nil {
		return nil, err
	}
	w := &loadUnderWatch{arp: arp, load: StartLoad(LoadOptions{URL: VIPURL("/"), Rate: deadFrontRate, Timeout: deadFrontPatience})}
	if err := waitServedBy(w.load, "", time.Time{}); err != nil {
		w.load.Stop()
		arp.Stop()
		return nil, err
	}
	return w, nil
}

// stop ends the load and the watcher, and records in r that no two fronts
// answered for the VIP at once.
func (w *loadUnderWatch) stop(r *Result) (LoadResult, error) {
	res := w.load.Stop()
	w.arp.Stop()
	conflicts := w.arp.Conflicts(probeInterval / 2)
	return res, r.check(len(conflicts) == 0, "never two fronts answering ARP for the VIP", "%d conflicts; holders %s",
		len(conflicts), strings.Join(w.arp.Holders(), " -> "))
}

// OwnerLostUnderLoad: the VIP owner dies (every process killed, its link
// down). The requests inside the gap fail; none fails after the new owner
// first answers, because every HAProxy marked the dead front down when its
// heartbeats went silent, before the address moved.
func OwnerLostUnderLoad(ctx context.Context, tb *Testbed) (r *Result, err error) {
	r = newResult("owner lost under load")
	fip, owner, err := tb.ownerFront(ctx)
	if err != nil {
		return r, err
	}
	tb.say("\n== %s (the owner) is killed under %d requests/s (client timeout %s); deadtime %s",
		owner.Name, deadFrontRate, deadFrontPatience, fip.Spec.Deadtime.Duration)
	w, err := tb.startLoadUnderWatch()
	if err != nil {
		return r, err
	}
	started := time.Now()
	defer func() { err = errors.Join(err, tb.recoverFront(ctx, owner)) }()
	if err := owner.Crash(); err != nil {
		w.stop(r)
		return r, err
	}
	var next string
	err = WaitFor(func() (bool, error) {
		var err error
		next, err = tb.vipMovedFrom(ctx, owner.Name)
		return next != "", err
	}, changeTimeout)
	if err == nil {
		err = waitOKAfter(w.load, time.Now(), answersFor(deadFrontRate, afterMoveWatch))
	}
	res, stopErr := w.stop(r)
	if err != nil || stopErr != nil {
		return r, errors.Join(err, stopErr)
	}
	moved := firstClaim(w.arp.Events(), owner.Name, started)
	inGap, after := moveFailures(res, started, moved)
	r.Counts["failed-in-gap"], r.Counts["failed-after-move"] = inGap, after
	r.figure("gap", "client-visible gap, "+owner.Name+" killed", res.Gap())
	tb.say("   the VIP moved to %s; %d of %d requests failed: %d inside the gap of %s, %d after the new owner first claimed the VIP",
		next, res.Failed(), len(res.Samples), inGap, round(res.Gap()), after)
	if err := r.check(after == 0, "no failed request once the new owner claims the VIP", "%d inside the gap, %d after: %s",
		inGap, after, failuresSince(res, moved, 5)); err != nil {
		return r, err
	}
	return r, nil
}

// NonOwnerLostUnderLoad: a front that does not hold the VIP dies. The
// owner's HAProxy sends it a share of the new sessions until it knows:
// each is redispatched after the short connect timeout, and the front is
// marked down by the errors of real traffic, then by its silence.
func NonOwnerLostUnderLoad(ctx context.Context, tb *Testbed) (r *Result, err error) {
	r = newResult("non-owner lost under load")
	fip, owner, victim, w, err := tb.nonOwnerUnderLoad(ctx, "%s (not the owner) is killed")
	if err != nil {
		return r, err
	}
	acted := time.Now()
	defer func() { err = errors.Join(err, tb.recoverFront(ctx, victim)) }()
	err = victim.Crash()
	if err == nil {
		// Past the deadtime and the guard, then as long as the checks
		// alone would take.
		watch := fip.Spec.Deadtime.Duration + fip.Spec.Guard.Duration + afterMoveWatch
		err = waitOKAfter(w.load, acted, answersFor(deadFrontRate, watch))
	}
	res, stopErr := w.stop(r)
	if err != nil || stopErr != nil {
		return r, errors.Join(err, stopErr)
	}
	failed := res.FailedBetween(acted, time.Time{})
	r.Counts["failed"] = failed
	tb.say("   %d of %d requests failed after %s was killed (%d in all), the VIP stayed on %s: %s",
		failed, len(res.Samples), victim.Name, res.Failed(), owner.Name, failuresSince(res, acted, 10))
	if err := r.check(failed <= handful, "at most a handful of failed requests", "%d of %d: %s",
		failed, len(res.Samples), failuresSince(res, acted, 3)); err != nil {
		return r, err
	}
	return r, nil
}

// WebServerHung: the web server of a live front stops answering (nginx
// SIGSTOPped: connections are still accepted by the kernel, no answer
// comes). Its agent, heartbeats and HAProxy are fine, so only HAProxy's
// check finds it; the requests it takes until then fail, and are counted.
func WebServerHung(ctx context.Context, tb *Testbed) (*Result, error) {
	r := newResult("web server hung")
	_, _, victim, w, err := tb.nonOwnerUnderLoad(ctx, "the nginx of %s (not the owner) is SIGSTOPped")
	if err != nil {
		return r, err
	}
	acted := time.Now()
	err = victim.signalWeb(syscall.SIGSTOP)
	var last time.Time
	if err == nil {
		last, err = waitFailuresStop(w.load, acted)
	}
	res, stopErr := w.stop(r)
	if contErr := victim.signalWeb(syscall.SIGCONT); err == nil {
		err = contErr
	}
	if err != nil || stopErr != nil {
		return r, errors.Join(err, stopErr)
	}
	failed := res.FailedBetween(acted, time.Time{})
	r.Counts["failed"] = failed
	r.figure("hung-failing", "requests failing after "+victim.Name+"'s nginx hung, for", last.Sub(acted))
	tb.say("   %d of %d requests failed, the last one sent %s after the hang; none since", failed, len(res.Samples), round(last.Sub(acted)))
	return r, tb.WaitReady(ctx, readyTimeout)
}

// nonOwnerUnderLoad picks a front that does not own the VIP, says what
// will happen to it (what holds one %s, its name), and starts the load.
func (tb *Testbed) nonOwnerUnderLoad(ctx context.Context, what string) (fip *webfarmv1.FailoverIP, owner, victim *Front, w *loadUnderWatch, err error) {
	fip, owner, err = tb.ownerFront(ctx)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	victim = tb.otherFront(owner.Name)
	tb.say("\n== "+what+" under %d requests/s (client timeout %s)", victim.Name, deadFrontRate, deadFrontPatience)
	w, err = tb.startLoadUnderWatch()
	return fip, owner, victim, w, err
}

// waitFailuresStop waits until no request sent in the last afterMoveWatch
// failed, and returns when the last failed one was sent (since itself if
// none did).
func waitFailuresStop(l *Load, since time.Time) (time.Time, error) {
	last := since
	err := WaitFor(func() (bool, error) {
		for _, s := range l.Result().Samples {
			if !s.OK() && s.Start.After(last) {
				last = s.Start
			}
		}
		return time.Since(last) > afterMoveWatch+deadFrontPatience, nil
	}, changeTimeout)
	if err != nil {
		return last, fmt.Errorf("requests still fail: %w", err)
	}
	return last, nil
}

// otherFront is the last front that is not name.
func (tb *Testbed) otherFront(name string) *Front {
	for i := len(tb.fronts) - 1; i >= 0; i-- {
		if tb.fronts[i].Name != name {
			return tb.fronts[i]
		}
	}
	return nil
}

// recoverFront brings a crashed front back and waits until the farm serves
// on every front.
func (tb *Testbed) recoverFront(ctx context.Context, f *Front) error {
	if err := f.Recover(); err != nil {
		return err
	}
	if err := tb.waitPhase(ctx, f.Name, "Active"); err != nil {
		return err
	}
	return tb.WaitReady(ctx, readyTimeout)
}

// signalWeb sends sig to every nginx process of the front: the master and
// its worker, which would otherwise go on serving.
func (f *Front) signalWeb(sig syscall.Signal) error {
	master := f.web.proc.Pid()
	if master == 0 {
		return fmt.Errorf("nginx of %s: not running", f.Name)
	}
	pids := []int{master}
	children, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(master), "task", strconv.Itoa(master), "children"))
	if err != nil {
		return fmt.Errorf("nginx of %s: %w", f.Name, err)
	}
	for _, c := range strings.Fields(string(children)) {
		pid, err := strconv.Atoi(c)
		if err != nil {
			return fmt.Errorf("nginx of %s: child %q: %w", f.Name, c, err)
		}
		pids = append(pids, pid)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil {
			return fmt.Errorf("nginx of %s: %v to %d: %w", f.Name, sig, pid, err)
		}
	}
	return nil
}
