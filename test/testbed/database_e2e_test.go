package testbed

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// TestE2EDatabaseFailover is the back-end trial of issue 13: a client
// writes numbered rows through the database address every 50 ms; the
// primary's node is lost hard (every process SIGKILLed, its link down).
// The replica must be promoted by its master hook before it announces the
// address, and writes must resume there. With semi-synchronous replication
// no acknowledged write may be lost; without it the loss is printed, not
// asserted. The old primary then comes back: it must stay read-only and
// must not take the address back. The write gap is printed.
func TestE2EDatabaseFailover(t *testing.T) {
	for _, semiSync := range []bool{true, false} {
		name := "semi-sync"
		if !semiSync {
			name = "async"
		}
		t.Run(name, func(t *testing.T) { databaseFailover(t, semiSync) })
	}
}

func databaseFailover(t *testing.T, semiSync bool) {
	hooks := t.TempDir()
	if err := DatabaseHooksDir(hooks); err != nil {
		t.Fatal(err)
	}
	tb := StartT(t, Options{Fronts: 2, AgentArgs: []string{"--hooks-dir", hooks}})
	ctx := context.Background()
	db, err := StartDatabase(ctx, tb, semiSync)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Stop)
	primary, replica := tb.fronts[0], tb.fronts[1]
	waitCandidate(t, db, replica.Name)
	owners := watchOwners(t, db)

	w, err := NewWriter(50 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { w.Run(wctx); close(done) }()
	defer func() { stop(); <-done }()
	start := time.Now()
	if err := WaitFor(func() (bool, error) { return w.AckedSince(start) >= 40, nil }, 30*time.Second); err != nil {
		t.Fatalf("the client never wrote steadily through %s: failures %v", DatabaseVIP, lastFailures(w, 3))
	}

	checkOwner(t, db, primary.Name)
	lost := time.Now()
	if err := primary.Crash(); err != nil {
		t.Fatal(err)
	}
	t.Logf("crashed %s (the primary) at %s", primary.Name, lost.Format(time.StampMilli))
	if err := WaitFor(func() (bool, error) { return w.AckedSince(lost) >= 20, nil }, 90*time.Second); err != nil {
		fip, _ := db.FailoverIP(ctx)
		t.Fatalf("writes never resumed after the loss of %s: failures %v; FailoverIP status %+v", primary.Name, lastFailures(w, 3), fip.Status)
	}
	stop()
	<-done
	acked := w.Acked()
	lostIDs, err := db.Lost(replica.Name, acked)
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, f := range w.Failed() {
		if f.At.After(lost) {
			failed++
		}
	}
	res := DatabaseFailover{SemiSync: semiSync, From: primary.Name, To: replica.Name, Gap: longestGap(acked, lost.Add(-time.Second)),
		Failed: failed, Acked: len(acked), Lost: len(lostIDs), LostIDs: lostIDs}
	t.Logf("database failover: %s", res)
	t.Logf("owners: %s", strings.Join(owners(), "; "))
	if semiSync && len(lostIDs) > 0 {
		t.Errorf("semi-synchronous replication lost acknowledged writes: %v", lostIDs)
	}
	if ro, err := db.Servers[replica.Name].SQL("SELECT @@global.read_only"); err != nil || ro != "0" {
		t.Errorf("the new primary %s: read_only %q, %v; want writable", replica.Name, ro, err)
	}
	checkOwner(t, db, replica.Name, primary.Name)

	// The old primary returns, as after a reboot: read-only (as every
	// server starts), replicating from nobody. Its check fails, so it is no
	// candidate, and without autoFailback the address stays.
	if err := primary.Recover(); err != nil {
		t.Fatal(err)
	}
	old, err := StartMariaDB(primary, 1)
	if err != nil {
		t.Fatal(err)
	}
	db.Servers[primary.Name] = old
	if err := WaitFor(func() (bool, error) {
		fip, err := db.FailoverIP(ctx)
		if err != nil {
			return false, err
		}
		for _, n := range fip.Status.Nodes {
			if n.Name == primary.Name && n.Reason == webfarmv1.EligibleChecksFail {
				t.Logf("returned %s: %s %s", n.Name, n.Reason, checkMessages(n.Checks))
				return true, nil
			}
		}
		return false, nil
	}, time.Minute); err != nil {
		t.Errorf("the returned old primary was never reported failing its check: %v", err)
	}
	if err := tb.holdsFor(3*time.Second, func() error {
		checkOwner(t, db, replica.Name)
		if ro, err := old.SQL("SELECT @@global.read_only"); err != nil || ro != "1" {
			t.Fatalf("the returned old primary: read_only %q, %v; want read-only", ro, err)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	fip, _ := db.FailoverIP(ctx)
	for _, n := range fip.Status.Nodes {
		hook := "none"
		if n.LastHook != nil {
			hook = string(n.LastHook.State) + " " + n.LastHook.Message
		}
		t.Logf("status.nodes %s: eligible %v (%s) %s; last hook: %s", n.Name, n.Eligible, n.Reason, checkMessages(n.Checks), hook)
	}
}

// waitCandidate waits until node's checks make it a candidate.
func waitCandidate(t *testing.T, db *Database, node string) {
	t.Helper()
	if err := WaitFor(func() (bool, error) {
		fip, err := db.FailoverIP(context.Background())
		if err != nil {
			return false, err
		}
		for _, c := range fip.Status.Candidates {
			if c == node {
				return true, nil
			}
		}
		return false, nil
	}, time.Minute); err != nil {
		fip, _ := db.FailoverIP(context.Background())
		t.Fatalf("%s never became a candidate: %v; nodes %+v", node, err, fip.Status.Nodes)
	}
}

// checkOwner fails t unless node owns the address and is the only front
// that holds it; a crashed front (its link down, its address left on it)
// is not looked at.
func checkOwner(t *testing.T, db *Database, node string, crashed ...string) {
	t.Helper()
	fip, err := db.FailoverIP(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if fip.Status.Owner != node {
		t.Fatalf("owner %q, want %s", fip.Status.Owner, node)
	}
	for _, f := range db.tb.fronts {
		if slices.Contains(crashed, f.Name) {
			continue
		}
		held, err := f.HoldsAddress(DatabaseVIP)
		if err != nil {
			t.Fatal(err)
		}
		if held != (f.Name == node) {
			t.Fatalf("%s holds the database address: %v, want %v", f.Name, held, f.Name == node)
		}
	}
}

func checkMessages(checks []webfarmv1.CheckResult) string {
	var parts []string
	for _, c := range checks {
		parts = append(parts, c.Name+"="+string(c.State)+" ("+c.Message+")")
	}
	return strings.Join(parts, ", ")
}

func lastFailures(w *Writer, n int) []string {
	f := w.Failed()
	if len(f) > n {
		f = f[len(f)-n:]
	}
	var out []string
	for _, x := range f {
		out = append(out, x.Err.Error())
	}
	return out
}

// watchOwners polls the FailoverIP's owner and epoch every 50 ms until the
// test ends; the returned func lists the changes, timed.
func watchOwners(t *testing.T, db *Database) func() []string {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var changes []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		last := ""
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			if fip, err := db.FailoverIP(ctx); err == nil {
				now := fmt.Sprintf("%s@%d", fip.Status.Owner, fip.Status.Epoch)
				if now != last {
					mu.Lock()
					changes = append(changes, time.Now().Format("15:04:05.000")+" "+now)
					mu.Unlock()
					last = now
				}
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), changes...)
	}
}
