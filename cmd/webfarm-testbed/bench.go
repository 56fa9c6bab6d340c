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
// tables, the fronts' and the database's, also when it stopped early (with
// the trials done so far), and writes them to out.
func benchFailover(ctx context.Context, opts testbed.Options, trials int, out string, only benchOnly) error {
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
		var table strings.Builder
		fmt.Fprintf(&table, "Failover on the testbed (%d fronts, %s), %d trials of each kind, %s",
			len(tb.Fronts()), keepalivedVersion(tb), trials, started.UTC().Format(time.RFC3339))
		var err error
		if !only.database {
			err = benchFronts(ctx, tb, trials, only.webfarm, &table)
		}
		if err == nil {
			err = benchDatabase(ctx, tb, trials, only.webfarm, &table)
		}
		fmt.Fprintf(&table, "\nin %s, load average %s\n", time.Since(started).Round(time.Second), testbed.LoadAverage())
		if err != nil {
			fmt.Fprintf(&table, "\nSTOPPED EARLY: %v\n", err)
			fmt.Printf("\n%s", tb.LogTails(30))
		}
		fmt.Printf("\n== Failover benchmark\n%s", table.String())
		return errors.Join(err, writeFile(out, table.String()))
	})
}

// benchOnly narrows bench-failover: webfarm's rows only, or the database's
// only.
type benchOnly struct{ webfarm, database bool }

// benchFronts runs the fronts' rows and writes their table.
func benchFronts(ctx context.Context, tb *testbed.Testbed, trials int, webfarmOnly bool, table *strings.Builder) error {
	bench := testbed.BenchFailover
	if webfarmOnly {
		bench = testbed.BenchWebfarm
	}
	results, err := bench(ctx, tb, trials)
	fmt.Fprintf(table, "\n\nThe fronts: the VIP in front of HAProxy\n\n")
	testbed.WriteTrialTable(table, results)
	return err
}

// benchDatabase runs the database's rows and writes their table.
func benchDatabase(ctx context.Context, tb *testbed.Testbed, trials int, webfarmOnly bool, table *strings.Builder) error {
	// keepalived as a database's users run it: the default advert_int,
	// beside a track_script every second.
	keepalived := []testbed.KeepalivedSettings{testbed.KeepalivedDefault}
	if webfarmOnly {
		keepalived = nil
	}
	results, err := testbed.BenchDatabase(ctx, tb, trials, keepalived)
	fmt.Fprintf(table, "\n\nThe database: MariaDB %s, primary and semi-synchronous replica, its address moved on the hard loss of the primary's node\n\n",
		mariadbVersion(tb))
	testbed.WriteDatabaseTable(table, results)
	return err
}

func mariadbVersion(tb *testbed.Testbed) string {
	out, _ := tb.Fronts()[0].Run("mariadbd", "--version")
	fields := strings.Fields(out)
	for i, f := range fields {
		if f == "Ver" && i+1 < len(fields) {
			return fields[i+1]
		}
	}
	return "(version unknown)"
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
