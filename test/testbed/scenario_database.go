package testbed

import (
	"context"
	"fmt"
	"time"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// DatabaseScenario: the back-end of issue 13 on the farm's first two
// fronts. MariaDB primary and semi-synchronous replica behind the database
// FailoverIP; the client writes a numbered row every 50 ms; the primary's
// node is lost hard. The replica's master hook promotes it before it
// announces the address, writes resume, and no acknowledged write is lost.
// The old primary comes back read-only and does not take the address back.
// The database is then removed, and the farm serves on every front again.
func DatabaseScenario(ctx context.Context, tb *Testbed) (r *Result, err error) {
	r = newResult("7. database")
	if len(tb.fronts) < 2 {
		return r, fmt.Errorf("the database scenario needs 2 fronts, the testbed has %d", len(tb.fronts))
	}
	tb.say("\n== 6. Database: MariaDB primary and semi-sync replica behind %s, a write every %s, the primary's node killed",
		DatabaseVIP, databaseWriteEvery)
	d, err := StartDatabase(ctx, tb, true)
	if err != nil {
		return r, err
	}
	defer func() {
		if err != nil {
			_ = d.Close(ctx)
		}
	}()
	t, err := d.hardLoss(ctx, webfarmMover{d}, true)
	if err != nil {
		return r, err
	}
	tb.say("   %s", t.DatabaseFailover)
	if err := r.check(t.Err == "", "writes resume on the promoted replica", "%s -> %s%s", t.From, t.To, errSuffix(t.Err)); err != nil {
		return r, err
	}
	r.figure("write-gap", "write gap, the primary's node killed", t.Gap)
	r.Counts["writes-lost"], r.Counts["writes-failed"] = t.Lost, t.Failed
	if err := r.check(t.Lost == 0, "acknowledged writes lost (semi-sync)", "%d of %d (%d writes failed in the gap)", t.Lost, t.Acked, t.Failed); err != nil {
		return r, err
	}
	got, err := d.OldPrimaryReturns(ctx, t.From, t.To)
	tb.say("   %s", got)
	if err := r.check(err == nil, "the old primary returns read-only, no failback", "%s", got); err != nil {
		return r, err
	}
	if err := d.Close(ctx); err != nil {
		return r, err
	}
	return r, tb.WaitReady(ctx, readyTimeout)
}

// OldPrimaryReturns brings the crashed front of the old primary back, as
// after a reboot: its server starts read-only, replicating from nobody. Its
// check must fail, so that it is no candidate, and for settle it must
// neither own nor hold the address, and its server must stay read-only. It
// returns what it saw, with how often owner held the address meanwhile.
func (d *Database) OldPrimaryReturns(ctx context.Context, old, owner string) (string, error) {
	f := d.tb.Front(old)
	if err := f.Recover(); err != nil {
		return "", err
	}
	server, err := StartMariaDB(f, d.serverID(old))
	if err != nil {
		return "", err
	}
	d.Servers[old] = server
	var reported string
	err = WaitFor(func() (bool, error) {
		fip, err := d.FailoverIP(ctx)
		if err != nil {
			return false, err
		}
		for _, n := range fip.Status.Nodes {
			if n.Name == old && n.Reason == webfarmv1.EligibleChecksFail {
				reported = fmt.Sprintf("%s: %s %s", n.Name, n.Reason, checkMessages(n.Checks))
				return true, nil
			}
		}
		return false, nil
	}, time.Minute)
	if err != nil {
		return "", fmt.Errorf("the returned old primary %s was never reported failing its check: %w", old, err)
	}
	unheld, samples := 0, 0
	err = d.tb.holdsFor(settle, func() error {
		samples++
		held, err := d.oldStaysOut(ctx, old, owner, server)
		if !held {
			unheld++
		}
		return err
	})
	if err != nil {
		return reported, err
	}
	return fmt.Sprintf("%s came back read-only (%s) and never held the address for %s; %s held it in %d of %d samples",
		old, reported, settle, owner, samples-unheld, samples), nil
}

// oldStaysOut fails if old owns or holds the address, or if its server is
// writable; it tells whether owner holds the address. An owner that fenced
// itself for a moment (it could not prove itself alive, on a loaded
// machine) is not the old primary's failback: it is counted, not failed.
func (d *Database) oldStaysOut(ctx context.Context, old, owner string, server *MariaDB) (bool, error) {
	fip, err := d.FailoverIP(ctx)
	if err != nil {
		return false, err
	}
	if fip.Status.Owner == old {
		return false, fmt.Errorf("%s owns the address again at epoch %d", old, fip.Status.Epoch)
	}
	if held, err := d.tb.Front(old).HoldsAddress(DatabaseVIP); err != nil || held {
		return false, fmt.Errorf("%s holds the database address again: %v, %v", old, held, err)
	}
	if ro, err := server.SQL("SELECT @@global.read_only"); err != nil || ro != "1" {
		return false, fmt.Errorf("the returned old primary: read_only %q, %v; want read-only", ro, err)
	}
	held, err := d.tb.Front(owner).HoldsAddress(DatabaseVIP)
	return held && fip.Status.Owner == owner, err
}
