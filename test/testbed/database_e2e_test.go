package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
//
// Both trials share one testbed: the asynchronous one goes the other way,
// the old primary of the first back as an asynchronous replica of the new.
func TestE2EDatabaseFailover(t *testing.T) {
	db := startDatabaseTestbed(t, true)
	var first DatabaseTrial
	if !t.Run("semi-sync", func(t *testing.T) { first = databaseFailover(t, db, true) }) {
		return
	}
	t.Run("async", func(t *testing.T) {
		if err := db.reseed(first.From, first.To, false); err != nil {
			t.Fatal(err)
		}
		waitCandidate(t, db, first.From)
		databaseFailover(t, db, false)
	})
}

// startDatabaseTestbed starts the testbed with two back-ends and the
// database, the second front's server a replica that is a candidate.
func startDatabaseTestbed(t *testing.T, semiSync bool) *Database {
	tb := StartT(t, Options{Fronts: 2})
	keepLogsOnFailure(t, tb)
	db, err := StartDatabase(context.Background(), tb, semiSync)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Stop)
	waitCandidate(t, db, tb.fronts[1].Name)
	return db
}

// databaseTrial is the testbed of a database trial: the primary's node
// holds the address and the client writes through it steadily.
type databaseTrial struct {
	tb               *Testbed
	db               *Database
	primary, replica *Front
	w                *Writer
	stopWriter       func()
}

// startDatabaseTrial starts the testbed with two back-ends, the database,
// the replica as a candidate, and the client writing a row every 50 ms.
func startDatabaseTrial(t *testing.T, semiSync bool) *databaseTrial {
	db := startDatabaseTestbed(t, semiSync)
	tb := db.tb
	tr := &databaseTrial{tb: tb, db: db, primary: tb.fronts[0], replica: tb.fronts[1]}
	var err error
	if tr.w, err = NewWriter(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.w.Run(wctx); close(done) }()
	var once sync.Once
	tr.stopWriter = func() { once.Do(func() { stop(); <-done }) }
	t.Cleanup(tr.stopWriter)
	start := time.Now()
	if err := WaitFor(func() (bool, error) { return tr.w.AckedSince(start) >= 40, nil }, 30*time.Second); err != nil {
		t.Fatalf("the client never wrote steadily through %s: failures %v", DatabaseVIP, lastFailures(tr.w, 3))
	}
	return tr
}

// databaseFailover loses the primary's node hard while the client writes
// (Database.hardLoss), checks the move, then brings the old primary back.
func databaseFailover(t *testing.T, db *Database, semiSync bool) DatabaseTrial {
	ctx := context.Background()
	watch := watchOwners(t, db)
	tr, err := db.hardLoss(ctx, webfarmMover{db}, semiSync)
	for _, e := range tr.Timeline {
		t.Logf("  %s", e)
	}
	t.Logf("database failover: %s", tr.DatabaseFailover)
	owners, acks := watch(tr.To)
	t.Logf("owners: %s", strings.Join(owners, "; "))
	t.Logf("%s's proofs through the API server while it owned the address: %s", tr.To, acks)
	t.Logf("%s's proofs as its agent timed them: %s", tr.To, apiProofs(ctx, db.tb.Front(tr.To)))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Err != "" {
		fip, _ := db.FailoverIP(ctx)
		t.Fatalf("after the loss of %s: %s; FailoverIP status %+v", tr.From, tr.Err, fip.Status)
	}
	if tr.Lost < 0 {
		t.Fatalf("reading the rows of %s failed", tr.To)
	}
	if tr.TwoAnswerers > 0 {
		t.Errorf("%d instants of two answerers for %s", tr.TwoAnswerers, DatabaseVIP)
	}
	if semiSync && tr.Lost > 0 {
		t.Errorf("semi-synchronous replication lost acknowledged writes: %v", tr.LostIDs)
	}
	if ro, err := db.Servers[tr.To].SQL("SELECT @@global.read_only"); err != nil || ro != "0" {
		t.Errorf("the new primary %s: read_only %q, %v; want writable", tr.To, ro, err)
	}
	checkOwner(t, db, tr.To, tr.From)
	// The server left has no peer to vouch for it: it keeps the address on
	// its witnesses alone, at one epoch, until the old primary returns. A
	// fence would show as the controller naming it again, at a new epoch.
	if owners, _ = watch(tr.To); len(owners) != 2 {
		t.Errorf("owners from before the loss until the old primary returns: %s; want %s's epoch, then %s's only",
			strings.Join(owners, "; "), tr.From, tr.To)
	}

	// The old primary returns, as after a reboot: read-only (as every
	// server starts), replicating from nobody. Its check fails, so it is no
	// candidate, and without autoFailback the address stays.
	got, err := db.OldPrimaryReturns(ctx, tr.From, tr.To)
	t.Logf("returned %s", got)
	if err != nil {
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
	return tr
}

// waitCandidate waits until node's checks make it a candidate.
func waitCandidate(t *testing.T, db *Database, node string) {
	t.Helper()
	if err := db.WaitCandidate(context.Background(), node, time.Minute); err != nil {
		t.Fatal(err)
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

// watchOwners polls the FailoverIP every 25 ms until the test ends; the
// returned func lists the changes of owner and epoch, timed, and sums up
// the acknowledgements of node's Lease renewals while it owned the address
// (ownerAcks).
func watchOwners(t *testing.T, db *Database) func(node string) ([]string, string) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var changes []string
	acks := map[string]*ownerAcks{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		last := ""
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			if fip, err := db.FailoverIP(ctx); err == nil {
				now := fmt.Sprintf("%s@%d", fip.Status.Owner, fip.Status.Epoch)
				mu.Lock()
				if now != last {
					changes = append(changes, time.Now().Format("15:04:05.000")+" "+now)
					last = now
				}
				if o := fip.Status.Owner; o != "" {
					if acks[o] == nil {
						acks[o] = &ownerAcks{}
					}
					acks[o].sample(fip, time.Now())
				}
				mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func(node string) ([]string, string) {
		mu.Lock()
		defer mu.Unlock()
		if acks[node] == nil {
			return slices.Clone(changes), "none seen"
		}
		return slices.Clone(changes), acks[node].String()
	}
}

// ownerAcks sums up, as polled, the owner's proofs of liveness through the
// API server, each good for deadtime - guard from its start: a Lease
// renewal once the controller acknowledges it (status.ownerRenewal), and
// its own witness (status.ownerWitness). A lone owner (no peer to vouch for
// it) holds only while one of them is younger than that. The testbed's
// processes share one clock, which makes the ages meaningful.
type ownerAcks struct {
	acks, witnesses proofLags
	// samples of the status, and those whose latest proof started more
	// than window (deadtime - guard) before.
	samples, stale int
	window         time.Duration
}

// proofLags are the delays from a proof's start to the status showing it.
type proofLags struct {
	last string
	lags []time.Duration
}

func (a *ownerAcks) sample(fip *webfarmv1.FailoverIP, now time.Time) {
	st := fip.Status
	a.window = fip.Spec.Deadtime.Duration - fip.Spec.Guard.Duration
	latest, ok := a.acks.sample(st.OwnerRenewal, now)
	if w := st.OwnerWitness; w != nil && w.Node == st.Owner && w.Epoch == st.Epoch {
		if started, seen := a.witnesses.sample(w.Renewal, now); seen && (!ok || started.After(latest)) {
			latest, ok = started, true
		}
	}
	if !ok {
		return
	}
	a.samples++
	if now.Sub(latest) > a.window {
		a.stale++
	}
}

// sample notes proof, the start of a proof as the status names it, and
// returns that start.
func (p *proofLags) sample(proof string, now time.Time) (time.Time, bool) {
	started, err := time.Parse(time.RFC3339Nano, proof)
	if err != nil {
		return time.Time{}, false
	}
	if proof != p.last {
		p.last = proof
		p.lags = append(p.lags, now.Sub(started))
	}
	return started, true
}

func (p proofLags) String() string {
	if len(p.lags) == 0 {
		return "none"
	}
	lags := slices.Clone(p.lags)
	slices.Sort(lags)
	q := func(f float64) time.Duration { return lags[int(f*float64(len(lags)-1))].Round(time.Millisecond) }
	return fmt.Sprintf("%d, from start to status p50 %s p90 %s max %s", len(lags), q(0.5), q(0.9), q(1))
}

func (a *ownerAcks) String() string {
	return fmt.Sprintf("acknowledged renewals %s; witnesses %s; %d of %d samples (every 25 ms) with the latest proof older than %s",
		a.acks, a.witnesses, a.stale, a.samples, a.window)
}

// apiProofs says how long the agent of f took, since it started, over its
// two ways of proving itself alive through the API server: its Lease
// renewals (PUT requests) and the witnesses that landed. Each proof lasts
// deadtime - guard (550 ms here) from its start; the lags of ownerAcks add
// the time until the test saw the status.
func apiProofs(ctx context.Context, f *Front) string {
	m, err := f.AgentMetrics(ctx)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("Lease renewals %s; witnesses %s",
		histogram(m, "webfarm_agent_api_request_duration_seconds", `method="PUT"`),
		histogram(m, "webfarm_failover_witness_duration_seconds", `result="landed"`))
}

// histogram sums up the histogram name, of the series that match labels:
// count, mean, and how many took longer than a few of its buckets.
func histogram(m Metrics, name, labels string) string {
	n := m.Sum(name+"_count", labels)
	out := fmt.Sprintf("%.0f, mean %.0f ms", n, 1000*m.Sum(name+"_sum", labels)/max(n, 1))
	for _, le := range []string{"0.05", "0.1", "0.25", "0.5", "1"} {
		out += fmt.Sprintf(", %.0f over %s s", n-m.Sum(name+"_bucket", labels, `le="`+le+`"`), le)
	}
	return out
}

// keepLogsOnFailure copies the testbed's logs into $WEBFARM_E2E_LOGS/<test>
// when t fails: the test's output has only their last lines.
func keepLogsOnFailure(t *testing.T, tb *Testbed) {
	dir := os.Getenv("WEBFARM_E2E_LOGS")
	if dir == "" {
		return
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dst := filepath.Join(dir, t.Name())
		if err := tb.SaveLogs(dst); err != nil {
			t.Logf("keeping the testbed's logs: %v", err)
			return
		}
		t.Logf("the testbed's logs are in %s", dst)
	})
}
