package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/webfarm/webfarm/test/testbed"
)

// demo runs the five demo scenarios on one testbed and prints the summary
// table. It stops at the first failing scenario: the later ones start from
// the farm state an earlier one leaves.
func demo(ctx context.Context, opts testbed.Options, keep bool) error {
	if opts.WithoutFarm {
		return fmt.Errorf("demo needs the farm: drop --without-farm")
	}
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
