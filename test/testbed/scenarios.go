package testbed

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Scenario is one narrated check of the farm, shared by `webfarm-testbed
// demo` and the e2e tests. Scenarios run in order on one testbed; each
// leaves the farm serving on every front (not necessarily with the same
// VIP owner).
type Scenario struct {
	Name string
	Run  func(ctx context.Context, tb *Testbed) (*Result, error)
}

// DemoScenarios are the scenarios of the demo, in order.
var DemoScenarios = []Scenario{
	{"1. balance", Balance},
	{"2. drain", DrainFront},
	{"3. hard loss", HardLoss},
	{"4. planned hand-off", PlannedHandOff},
	{"5. stats, errors, logs", StatsErrorsLogs},
	{"6. sites", SitesHTTPS},
	{"7. database", DatabaseScenario},
	{"8. uploads", UploadsScenario},
}

// Timeouts of the scenarios' waits: generous, since they bound failures,
// not measurements.
const (
	readyTimeout  = 90 * time.Second
	changeTimeout = 30 * time.Second
	// settle is how long a scenario watches that something does not happen.
	settle = 5 * time.Second
)

// Balance: new visitors are spread across every front; a visitor keeping
// its cookie stays on its front.
func Balance(ctx context.Context, tb *Testbed) (*Result, error) {
	r := newResult("1. balance")
	visitors := 10 * len(tb.fronts)
	tb.say("\n== 1. Balance: %d new visitors (no cookie) ask the VIP %s", visitors, VIP)
	counts := map[string]int{}
	for range visitors {
		resp, err := Get(ctx, tb.Client(), VIPURL("/"))
		if err != nil {
			return r, fmt.Errorf("GET %s: %w", VIPURL("/"), err)
		}
		counts[resp.Front]++
	}
	low, high := visitors, 0
	for _, f := range tb.fronts {
		low, high = min(low, counts[f.Name]), max(high, counts[f.Name])
	}
	tb.say("   answered by: %s", formatCounts(counts))
	if err := r.check(low > 0 && high-low <= 2, "new visitors spread over every front", "%s", formatCounts(counts)); err != nil {
		return r, err
	}

	tb.say("   A visitor with a cookie jar sends 20 requests")
	c := NewClient(ClientOptions{Cookies: true})
	fronts, err := getMany(ctx, c, 20)
	if err != nil {
		return r, err
	}
	cookie := cookieValue(c, "SERVERID")
	tb.say("   its cookie SERVERID=%s; answered by: %s", cookie, formatCounts(fronts))
	return r, r.check(len(fronts) == 1 && cookie != "", "cookie visitor stays on its front",
		"%s (SERVERID=%s)", formatCounts(fronts), cookie)
}

// DrainFront: annotating front1 for drain stops new clients landing on it
// while a client holding its cookie keeps being served there; it reaches
// Drained; removing the annotation brings it back. No request fails.
//
// When front1 owns the VIP, draining it also hands the VIP off, whose gap
// PlannedHandOff measures; this scenario then drains the next front, so that
// it shows the drain alone.
func DrainFront(ctx context.Context, tb *Testbed) (*Result, error) {
	r := newResult("2. drain")
	owner, err := tb.Owner(ctx)
	if err != nil {
		return r, err
	}
	target := tb.fronts[0].Name
	if target == owner && len(tb.fronts) > 1 {
		tb.say("\n   (%s owns the VIP: draining it hands the VIP off, as scenario 4 shows; here %s drains)", owner, tb.fronts[1].Name)
		target = tb.fronts[1].Name
	}
	pinned, err := pinnedClient(ctx, target)
	if err != nil {
		return r, err
	}
	load := StartLoad(LoadOptions{URL: VIPURL("/"), Rate: 40})
	defer load.Stop()
	if err := waitServedBy(load, target, time.Time{}); err != nil {
		return r, err
	}
	tb.say("\n== 2. Drain: kubectl annotate node %s %s=true (a steady load of new visitors runs; one visitor holds %s's cookie)",
		target, "webfarm.io/drain", target)
	hashes, err := tb.configHashes(ctx)
	if err != nil {
		return r, err
	}
	if err := tb.Drain(target, true); err != nil {
		return r, err
	}
	// From when the API server holds the annotation: kubectl's own start-up
	// (a few hundred ms on a busy machine) is not the farm's reaction time.
	annotated := time.Now()
	last, err := waitNotServedBy(load, target, annotated)
	if err != nil {
		return r, err
	}
	r.figure("annotation-to-no-new-sessions", "annotation to no new visitor on "+target, last.Sub(annotated))
	tb.say("   new visitors stopped landing on %s %s after the annotation", target, round(last.Sub(annotated)))

	fronts, err := getMany(ctx, pinned, 10)
	if err != nil {
		return r, err
	}
	tb.say("   the visitor holding %s's cookie: %s", target, formatCounts(fronts))
	if err := r.check(len(fronts) == 1 && fronts[target] == 10, "cookie visitor still served by "+target, "%s", formatCounts(fronts)); err != nil {
		return r, err
	}
	if err := tb.waitPhase(ctx, target, "Drained"); err != nil {
		return r, r.check(false, target+" reaches Drained", "%v", err)
	}
	_ = r.check(true, target+" reaches Drained", "after %s", round(time.Since(annotated)))
	tb.say("   FrontNode %s is Drained %s after the annotation: safe for maintenance", target, round(time.Since(annotated)))
	if reloaded, err := tb.reloadedSince(ctx, hashes); err == nil {
		tb.say("   HAProxy configuration changed (reloaded) for the drain on: %v", reloaded)
	}

	tb.say("   kubectl annotate node %s webfarm.io/drain-", target)
	if err := tb.Drain(target, false); err != nil {
		return r, err
	}
	undrained := time.Now()
	if err := tb.waitPhase(ctx, target, "Active"); err != nil {
		return r, err
	}
	if err := waitServedBy(load, target, undrained); err != nil {
		return r, err
	}
	tb.say("   %s is Active and serving new visitors again %s after the undrain", target, round(time.Since(undrained)))
	_ = r.check(true, target+" back after undrain", "after %s", round(time.Since(undrained)))
	res := load.Stop()
	before, drain, undrain := res.FailedBetween(time.Time{}, annotated), res.FailedBetween(annotated, undrained), res.FailedBetween(undrained, time.Time{})
	tb.say("   steady load: %d requests, %d failed (%d before the annotation, %d while draining, %d after the undrain)",
		len(res.Samples), res.Failed(), before, drain, undrain)
	r.Counts["failed-drain"], r.Counts["failed-undrain"] = drain, undrain
	if err := r.check(res.Failed() == 0, "failed requests during drain and undrain",
		"%d before, %d draining, %d after undrain, of %d %v", before, drain, undrain, len(res.Samples), res.FirstErrors(3)); err != nil {
		return r, err
	}
	return r, tb.WaitReady(ctx, readyTimeout)
}

// HardLoss: the VIP owner dies (all its processes killed, its link down);
// the VIP moves, the client-visible gap is measured, at no moment do two
// fronts answer for the VIP, and with autoFailback false the address stays
// where it went when the node comes back.
func HardLoss(ctx context.Context, tb *Testbed) (*Result, error) {
	r := newResult("3. hard loss")
	fip, err := tb.FailoverIP(ctx)
	if err != nil {
		return r, err
	}
	owner := fip.Status.Owner
	tb.say("\n== 3. Hard loss: %s owns the VIP (keepalive %s, deadtime %s, autoFailback %t); it is killed: every process, and its link down",
		owner, fip.Spec.Keepalive.Duration, fip.Spec.Deadtime.Duration, fip.Spec.AutoFailback)
	gap, next, err := tb.measureMove(ctx, r, owner, func() error { return tb.Front(owner).Crash() })
	if err != nil {
		return r, err
	}
	r.figure("gap", "client-visible gap, "+owner+" killed", gap)
	tb.say("   the VIP moved to %s; clients saw a gap of %s", next, round(gap))
	// Reported, not asserted: the dead-front trials assert none after.
	_ = r.check(true, "failed requests inside the gap, after the move", "%d, %d",
		r.Counts["failed-in-gap"], r.Counts["failed-after-move"])

	tb.say("   %s comes back (as after a reboot: agent restarted, addresses gone)", owner)
	if err := tb.Front(owner).Recover(); err != nil {
		return r, err
	}
	if err := tb.waitPhase(ctx, owner, "Active"); err != nil {
		return r, err
	}
	stayed := tb.holdsFor(settle, tb.unchanged(ctx, vipState{owner: next, epoch: -1, holders: []string{next}}))
	got := fmt.Sprintf("owner %s for %s after %s recovered", next, settle, owner)
	if stayed != nil {
		got = stayed.Error()
	}
	tb.say("   %s", got)
	if err := r.check(stayed == nil, "no failback (autoFailback false)", "%s", got); err != nil {
		return r, err
	}
	return r, tb.WaitReady(ctx, readyTimeout)
}

// PlannedHandOff: draining the VIP owner hands the address off at once.
func PlannedHandOff(ctx context.Context, tb *Testbed) (*Result, error) {
	r := newResult("4. planned hand-off")
	owner, err := tb.Owner(ctx)
	if err != nil {
		return r, err
	}
	tb.say("\n== 4. Planned hand-off: kubectl annotate node %s webfarm.io/drain=true on the VIP owner", owner)
	gap, next, err := tb.measureMove(ctx, r, owner, func() error { return tb.Drain(owner, true) })
	if err != nil {
		return r, err
	}
	r.figure("handoff-gap", "client-visible gap, "+owner+" drained", gap)
	tb.say("   the VIP moved to %s; clients saw a gap of %s", next, round(gap))
	if err := tb.Drain(owner, false); err != nil {
		return r, err
	}
	return r, tb.WaitReady(ctx, readyTimeout)
}

// StatsErrorsLogs: the stats page answers on the VIP with the configured
// credentials only; the access log holds the client's address first; when
// every web server is down, the site's own 503 page is served.
func StatsErrorsLogs(ctx context.Context, tb *Testbed) (*Result, error) {
	r := newResult("5. stats, errors, logs")
	tb.say("\n== 5. Stats page, access log, error page")
	if err := tb.checkStats(ctx, r); err != nil {
		return r, err
	}
	if err := tb.checkAccessLog(ctx, r); err != nil {
		return r, err
	}
	return r, tb.checkErrorPage(ctx, r)
}

func (tb *Testbed) checkStats(ctx context.Context, r *Result) error {
	url := VIPURL(StatsPath)
	anonymous, err := Get(ctx, tb.Client(), url)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(StatsUser, StatsPassword)
	resp, err := tb.Client().Do(req)
	if err != nil {
		return fmt.Errorf("GET %s as %s: %w", url, StatsUser, err)
	}
	resp.Body.Close()
	tb.say("   GET %s: %d without credentials, %d as %s", url, anonymous.Status, resp.StatusCode, StatsUser)
	if err := r.check(anonymous.Status == http.StatusUnauthorized, "stats page refused without credentials", "%d", anonymous.Status); err != nil {
		return err
	}
	return r.check(resp.StatusCode == http.StatusOK, "stats page with the Secret's credentials", "%d", resp.StatusCode)
}

func (tb *Testbed) checkAccessLog(ctx context.Context, r *Result) error {
	path := fmt.Sprintf("/?visit=%d", time.Now().UnixNano())
	resp, err := Get(ctx, tb.Client(), VIPURL(path))
	if err != nil || resp.Front == "" {
		return fmt.Errorf("GET %s: %v (%d)", VIPURL(path), err, resp.Status)
	}
	f := tb.Front(resp.Front)
	var line string
	err = tb.WaitFor(func() (bool, error) {
		lines, err := f.AccessLog()
		for _, l := range lines {
			if strings.Contains(l, path) {
				line = l
			}
		}
		return line != "", err
	}, 5*time.Second)
	if err != nil {
		return r.check(false, "access log names the client first", "no line for %s in %s", path, f.AccessLogPath())
	}
	tb.say("   %s's access log: %s", f.Name, line)
	first, _, _ := strings.Cut(line, " ")
	return r.check(isClientAddress(first) && !strings.HasSuffix(line, `"`+ClientAddress+`"`),
		"access log names the client first", "%s", line)
}

// isClientAddress accepts the client's address also in its IPv4-mapped
// IPv6 form (::ffff:10.99.0.100), as a dual-stack listener reports it.
func isClientAddress(s string) bool {
	return strings.TrimPrefix(s, "::ffff:") == ClientAddress
}

func (tb *Testbed) checkErrorPage(ctx context.Context, r *Result) error {
	tb.say("   every front's nginx stops")
	for _, f := range tb.fronts {
		if err := f.StopWeb(); err != nil {
			return err
		}
	}
	var resp Response
	err := tb.WaitFor(func() (bool, error) {
		var err error
		resp, err = Get(ctx, tb.Client(), VIPURL("/"))
		return err == nil && resp.Status == http.StatusServiceUnavailable, nil
	}, changeTimeout)
	custom := strings.Contains(resp.Body, "come back in a few minutes")
	tb.say("   GET %s: %d %s", VIPURL("/"), resp.Status, firstLine(resp.Body))
	checkErr := r.check(err == nil && custom, "site's own 503 page when all fronts are down", "%d %s", resp.Status, firstLine(resp.Body))
	for _, f := range tb.fronts {
		if err := f.StartWeb(); err != nil {
			return err
		}
	}
	if checkErr != nil {
		return checkErr
	}
	tb.say("   every front's nginx starts again")
	return tb.WaitReady(ctx, readyTimeout)
}
