package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/webfarm/webfarm/test/testbed"
)

// benchFailover runs the failover comparison on one testbed and prints its
// table, also when it stopped early (with the trials done so far), and
// writes it to out.
func benchFailover(ctx context.Context, opts testbed.Options, trials int, out string, webfarmOnly bool) error {
	if opts.WithoutFarm || opts.WithoutAgents {
		return fmt.Errorf("bench-failover needs the farm: drop --without-farm and --without-agents")
	}
	if trials < 1 {
		return fmt.Errorf("--trials %d: at least 1", trials)
	}
	started := time.Now()
	return withTestbed(ctx, opts, func(tb *testbed.Testbed) error {
		fmt.Println("\nWaiting for the farm to serve (every front Active, the VIP held by its owner)...")
		if err := tb.WaitReady(ctx, 90*time.Second); err != nil {
			return err
		}
		bench := testbed.BenchFailover
		if webfarmOnly {
			bench = testbed.BenchWebfarm
		}
		results, err := bench(ctx, tb, trials)
		var table strings.Builder
		fmt.Fprintf(&table, "Failover on the testbed (%d fronts, %s), %d trials of each kind, %s, in %s\n\n",
			len(tb.Fronts()), keepalivedVersion(tb), trials, started.UTC().Format(time.RFC3339), time.Since(started).Round(time.Second))
		testbed.WriteTrialTable(&table, results)
		if err != nil {
			fmt.Fprintf(&table, "\nSTOPPED EARLY: %v\n", err)
			fmt.Printf("\n%s", tb.LogTails(30))
		}
		fmt.Printf("\n== Failover benchmark\n%s", table.String())
		return errors.Join(err, writeFile(out, table.String()))
	})
}

// webfarmTrials runs n webfarm trials of one kind at one setting and
// prints their table.
func webfarmTrials(ctx context.Context, opts testbed.Options, settings, kind string, n int) error {
	s, ok := map[string]testbed.WebfarmSettings{"defaults": testbed.WebfarmDefaults, "fastest": testbed.WebfarmFastest}[settings]
	if !ok {
		return fmt.Errorf("--settings %q: defaults or fastest", settings)
	}
	k, ok := map[string]string{"handoff": testbed.TrialHandOff, "hardloss": testbed.TrialHardLoss}[kind]
	if !ok {
		return fmt.Errorf("--kind %q: handoff or hardloss", kind)
	}
	return withTestbed(ctx, opts, func(tb *testbed.Testbed) error {
		if err := tb.WaitReady(ctx, 90*time.Second); err != nil {
			return err
		}
		results, err := testbed.WebfarmTrials(ctx, tb, s, k, n)
		var table strings.Builder
		testbed.WriteTrialTable(&table, results)
		fmt.Printf("\n== %s at the %s settings\n%s", k, settings, table.String())
		return err
	})
}

func keepalivedVersion(tb *testbed.Testbed) string {
	out, _ := tb.Fronts()[0].Run("keepalived", "--version")
	first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	if first == "" {
		return "keepalived version unknown"
	}
	return first
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return err
	}
	fmt.Printf("\ntable written to %s\n", path)
	return nil
}
