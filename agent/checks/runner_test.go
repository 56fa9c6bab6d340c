package checks

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// scripted passes or fails as its script says, one letter per run ('+' or
// '-'), and fails once the script is over.
type scripted struct {
	script string
	runs   atomic.Int32
}

func (s *scripted) Run(context.Context) (string, error) {
	i := int(s.runs.Add(1)) - 1
	if i < len(s.script) && s.script[i] == '+' {
		return "ok", nil
	}
	return "", errors.New("down")
}

// slow never answers before its deadline.
type slow struct{}

func (slow) Run(ctx context.Context) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}

// TestRunner drives the runner on a fake clock: every step of an interval
// runs each check once, and the report follows rise and fall.
func TestRunner(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	r := NewRunner(clk)
	db := &scripted{script: "++--"}
	r.Set([]Target{{FailoverIP: "db/primary", Checks: []Check{
		{Name: "mysql", Interval: time.Second, Timeout: time.Second, Rise: 2, Fall: 2, Version: "1", NewProbe: func() (Probe, error) { return db, nil }},
		{Name: "port", Interval: time.Second, Timeout: 100 * time.Millisecond, Rise: 1, Fall: 1, Version: "1", NewProbe: func() (Probe, error) { return slow{}, nil }},
	}}})
	reports := make(chan []webfarmv1.NodeChecksStatus, 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx, func(s []webfarmv1.NodeChecksStatus) { reports <- s })

	// The time-outs of "port" run on the real clock's deadline
	// (context.WithTimeout); the schedule is the fake clock's, one run of
	// each check every ten steps.
	want := []struct {
		runs   int32
		state  webfarmv1.CheckState
		checks [2]webfarmv1.CheckState // mysql, port
	}{
		{1, webfarmv1.CheckFailing, [2]webfarmv1.CheckState{U, F}}, // port timed out: fall 1
		{2, webfarmv1.CheckFailing, [2]webfarmv1.CheckState{P, F}}, // mysql rose after 2
		{4, webfarmv1.CheckFailing, [2]webfarmv1.CheckState{F, F}}, // and fell after 2
	}
	for i, w := range want {
		got, runs := waitReport(t, clk, reports, db, func(s []webfarmv1.NodeChecksStatus) bool {
			return len(s) == 1 && s[0].State == w.state && s[0].Checks[0].State == w.checks[0] && s[0].Checks[1].State == w.checks[1]
		})
		if runs != w.runs {
			t.Errorf("report %d: %+v after %d runs of mysql, want %d", i, got[0].Checks, runs, w.runs)
		}
		t.Logf("report %d after %d runs: %+v", i, runs, got[0].Checks)
	}
	r.Set(nil)
	waitReport(t, clk, reports, db, func(s []webfarmv1.NodeChecksStatus) bool { return len(s) == 0 })
}

// waitReport steps the fake clock a tick at a time until a report
// satisfies ok, and returns it with the runs of db so far.
func waitReport(t *testing.T, clk *clocktesting.FakeClock, reports chan []webfarmv1.NodeChecksStatus, db *scripted, ok func([]webfarmv1.NodeChecksStatus) bool) ([]webfarmv1.NodeChecksStatus, int32) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	step := time.NewTicker(20 * time.Millisecond)
	defer step.Stop()
	for {
		select {
		case s := <-reports:
			if ok(s) {
				return s, db.runs.Load()
			}
		case <-step.C:
			clk.Step(tick)
		case <-deadline:
			t.Fatalf("no such report (mysql ran %d times)", db.runs.Load())
		}
	}
}
