package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/webfarm/webfarm/test/testbed"
)

// soakLogs is where a failed soak leaves the testbed's logs.
const soakLogs = "_output/soak-logs"

// soakFailover holds the farm at its fastest settings for d on a loaded
// machine and fails when anything moved, fenced or answered twice.
func soakFailover(ctx context.Context, opts testbed.Options, d time.Duration, hogs int, out string) error {
	if opts.WithoutFarm || opts.WithoutAgents {
		return fmt.Errorf("soak-failover needs the farm: drop --without-farm and --without-agents")
	}
	return withTestbed(ctx, opts, func(tb *testbed.Testbed) error {
		fmt.Println("\nWaiting for the farm to serve (every front Active, the VIP held by its owner)...")
		if err := tb.WaitReady(ctx, 90*time.Second); err != nil {
			return err
		}
		res, err := testbed.SoakFailover(ctx, tb, testbed.WebfarmFastest, d, hogs)
		report := testbed.WriteSoak(res)
		fmt.Printf("\n== No-false-fence soak\n%s", report)
		if err == nil && (res.FalseFences() > 0 || res.TwoAnswerers > 0) {
			err = fmt.Errorf("%d owner changes, %d fences and %d instants of two answerers with nothing failing (keepalived beside it: %d moves)",
				res.OwnerChanges, res.Fences, res.TwoAnswerers, res.AnchorMoves)
			fmt.Printf("\n%s", tb.LogTails(30))
		}
		if err != nil {
			if serr := tb.SaveLogs(soakLogs); serr == nil {
				fmt.Printf("\nthe testbed's logs are in %s\n", soakLogs)
			}
		}
		return errors.Join(err, writeFile(out, report))
	})
}
