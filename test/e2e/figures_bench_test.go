package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/webfarm/webfarm/test/testbed"
)

// trials is how many times each figure is measured
// (WEBFARM_E2E_TRIALS, default 10).
func trials() int {
	if n, err := strconv.Atoi(os.Getenv("WEBFARM_E2E_TRIALS")); err == nil && n > 0 {
		return n
	}
	return 10
}

// figureRun is one measured scenario and the figures it yields.
type figureRun struct {
	scenario testbed.Scenario
	// durations: Result.Figures key -> metric name prefix.
	durations map[string]string
	// counts: Result.Counts key -> metric name.
	counts map[string]string
}

var figureRuns = []figureRun{
	{scenario: testbed.DemoScenarios[2], durations: map[string]string{"gap": "hard-loss-gap"}},
	{scenario: testbed.DemoScenarios[3], durations: map[string]string{"handoff-gap": "handoff-gap"}},
	{scenario: testbed.DemoScenarios[1],
		durations: map[string]string{"annotation-to-no-new-sessions": "drain-no-new-sessions"},
		counts:    map[string]string{"failed-drain": "drain-failed-requests", "failed-undrain": "undrain-failed-requests"}},
	{scenario: testbed.Scenario{Name: "config reload", Run: testbed.ConfigReload}, counts: map[string]string{"failed": "reload-failed-requests"}},
}

// BenchmarkE2EFigures measures, over several trials on one testbed at the
// samples' defaults: the client-visible gap on hard owner loss and on a
// planned hand-off, the time from the drain annotation to no new session
// on the drained front, and the failed requests during drain, undrain and
// reload. It prints median and max; it asserts nothing about time.
func BenchmarkE2EFigures(b *testing.B) {
	testbed.Skip(b)
	// The narration would drown the figures (benchmark logs are truncated).
	tb := start(b, testbed.Options{Log: io.Discard})
	n := trials()
	durations := map[string][]time.Duration{}
	counts := map[string]int{}
	failures := 0
	for trial := range n {
		for _, fr := range figureRuns {
			r, err := fr.scenario.Run(context.Background(), tb)
			// Whatever was measured counts, also from a failed trial: its
			// failed requests are the figure.
			for key, metric := range fr.durations {
				if d, ok := r.Figures[key]; ok {
					durations[metric] = append(durations[metric], d)
				}
			}
			for key, metric := range fr.counts {
				counts[metric] += r.Counts[key]
			}
			if err != nil {
				failures++
				fmt.Printf("trial %d, %s FAILED: %v\n", trial+1, fr.scenario.Name, err)
				if err := tb.WaitReady(context.Background(), 2*time.Minute); err != nil {
					b.Fatalf("the farm did not recover after a failed trial: %v", err)
				}
			}
		}
	}
	for metric, ds := range durations {
		slices.Sort(ds)
		median, worst := ds[len(ds)/2], ds[len(ds)-1]
		b.ReportMetric(median.Seconds(), metric+"-median-s")
		b.ReportMetric(worst.Seconds(), metric+"-max-s")
		fmt.Printf("%-24s median %-8s max %-8s over %d trials\n", metric, median.Round(time.Millisecond), worst.Round(time.Millisecond), len(ds))
	}
	for metric, c := range counts {
		b.ReportMetric(float64(c), metric)
		fmt.Printf("%-24s %d in total over %d trials\n", metric, c, n)
	}
	b.ReportMetric(float64(failures), "failed-trials")
}
