package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/webfarm/webfarm/test/testbed"
)

// demo runs the demo scenarios on one testbed and prints the summary
// table. It stops at the first failing scenario: the later ones start from
// the farm state an earlier one leaves.
func demo(ctx context.Context, opts testbed.Options, keep bool) error {
	if opts.WithoutFarm {
		return fmt.Errorf("demo needs the farm: drop --without-farm")
	}
	// The uploads scenario needs each agent to see its own front's
	// uploads directory.
	opts.Uploads = true
	return withTestbed(ctx, opts, func(tb *testbed.Testbed) error {
		fmt.Println("\nWaiting for the farm to serve (every front Active, the VIP held by its owner)...")
		if err := tb.WaitReady(ctx, 90*time.Second); err != nil {
			return err
		}
		results, err := runScenarios(ctx, tb)
		fmt.Println("\n== Summary")
		testbed.WriteTable(os.Stdout, results)
		if err != nil {
			return err
		}
		fmt.Println("\nAll scenarios passed.\n\n== Live figures, from the metrics")
		if err := testbed.WriteLiveFigures(ctx, os.Stdout, tb); err != nil {
			return fmt.Errorf("reading the metrics: %w", err)
		}
		if err := failoverFigures(ctx, tb); err != nil {
			return err
		}
		if keep {
			explain(tb)
			<-ctx.Done()
		}
		return nil
	})
}

func runScenarios(ctx context.Context, tb *testbed.Testbed) ([]*testbed.Result, error) {
	var results []*testbed.Result
	for _, s := range testbed.DemoScenarios {
		if err := ctx.Err(); err != nil {
			return results, fmt.Errorf("interrupted before %s", s.Name)
		}
		r, err := s.Run(ctx, tb)
		results = append(results, r)
		if err != nil {
			fmt.Printf("\n%s", tb.LogTails(30))
			return results, fmt.Errorf("scenario %s: %w", s.Name, err)
		}
	}
	return results, nil
}

// demoTrials is how many trials of each kind the demo's failover
// comparison runs: one, so that it adds about two minutes; `make
// bench-failover` runs more.
const demoTrials = 1

// failoverFigures moves the address as the failover benchmark does, once
// per kind, keepalived beside webfarm, prints the table, and puts the
// FailoverIP's timings back as the samples set them.
func failoverFigures(ctx context.Context, tb *testbed.Testbed) error {
	fmt.Println("\n== Failover: webfarm beside keepalived (one trial of each kind; make bench-failover runs more)")
	sample, err := failoverTimings(tb)
	if err != nil {
		return err
	}
	trials, err := testbed.BenchFailover(ctx, tb, demoTrials)
	testbed.WriteTrialTable(os.Stdout, trials)
	if err != nil {
		return fmt.Errorf("failover figures: %w", err)
	}
	return tb.SetFailoverTimings(ctx, sample)
}

// failoverTimings reads the sample FailoverIP's timings.
func failoverTimings(tb *testbed.Testbed) (testbed.WebfarmSettings, error) {
	out, err := tb.Kubectl("get", "failoverips.webfarm.io", testbed.FailoverIPName, "-n", testbed.SamplesNamespace,
		"-o", "jsonpath={.spec.keepalive} {.spec.deadtime} {.spec.guard}")
	if err != nil {
		return testbed.WebfarmSettings{}, err
	}
	s := testbed.WebfarmSettings{Name: "samples"}
	fields := strings.Fields(out)
	if len(fields) != 3 {
		return s, fmt.Errorf("the sample FailoverIP's timings: %q", out)
	}
	for i, d := range []*time.Duration{&s.Keepalive, &s.Deadtime, &s.Guard} {
		if *d, err = time.ParseDuration(fields[i]); err != nil {
			return s, fmt.Errorf("the sample FailoverIP's timings: %w", err)
		}
	}
	return s, nil
}
