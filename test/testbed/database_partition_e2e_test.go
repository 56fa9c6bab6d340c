package testbed

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// partitionFor is how long the two back-ends stay cut from each other: many
// deadtimes of the trial's FailoverIP, and past MariaDB's default semi-sync
// timeout (10 s), after which the primary acknowledges writes without its
// replica.
const partitionFor = 15 * time.Second

// TestE2EDatabasePartition is the partition trial of issue 13: the two
// back-ends stop hearing each other — every packet between their
// addresses is dropped in the primary's namespace: the agents' peer
// heartbeats and the replication — while both still reach the API server
// and the client keeps writing through the address. Every 200 ms the trial
// samples which servers are writable and which nodes hold the address.
// Never may two servers be writable, nor two nodes hold the address. The
// owner should keep the address, proving itself alive through its Lease,
// and then has every acknowledged write; on a loaded machine its Lease may
// not prove it in time and the database moves: the owner after, and the
// acknowledged writes it lacks (semi-sync falls back to asynchronous after
// its timeout), are printed, not asserted.
func TestE2EDatabasePartition(t *testing.T) {
	tr := startDatabaseTrial(t, true)
	primary, replica := tr.primary, tr.replica
	checkOwner(t, tr.db, primary.Name)
	samples := sampleWritable(t, tr)
	watch := watchOwners(t, tr.db)

	start := time.Now()
	if err := primary.dropTraffic(replica.Address, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = primary.dropTraffic(replica.Address, false) })
	t.Logf("partitioned %s from %s at %s for %s", primary.Name, replica.Name, start.Format(time.StampMilli), partitionFor)
	if err := tr.tb.holdsFor(partitionFor, func() error { return ownerStays(tr.db, primary.Name) }); err != nil {
		t.Logf("the owner moved during the partition: %v", err)
	}
	if err := primary.dropTraffic(replica.Address, false); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	t.Logf("healed at %s", healed.Format(time.StampMilli))
	owners, acks := watch(primary.Name)
	t.Logf("owners: %s", strings.Join(owners, "; "))
	t.Logf("%s's Lease renewals acknowledged while it owned the address: %s", primary.Name, acks)
	if err := WaitFor(func() (bool, error) { return tr.w.AckedSince(healed) >= 40, nil }, time.Minute); err != nil {
		t.Fatalf("writes did not go on after the partition healed: failures %v", lastFailures(tr.w, 3))
	}
	tr.stopWriter()

	timeline := samples()
	for _, s := range timeline.changes() {
		t.Logf("  %s", s)
	}
	acked := tr.w.Acked()
	res := DatabasePartition{For: partitionFor, Samples: len(timeline), MostWritable: timeline.most(func(s writableSample) int { return len(s.writable) }),
		MostHolders: timeline.most(func(s writableSample) int { return len(s.holders) }), Gap: longestGap(acked, start),
		Acked: len(acked), Failed: len(tr.w.Failed())}
	fip, err := tr.db.FailoverIP(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res.Owner = fip.Status.Owner
	lost, err := tr.db.Lost(res.Owner, acked)
	if err != nil {
		t.Fatal(err)
	}
	res.Lost = len(lost)
	t.Logf("database partition: %s", res)
	if res.MostWritable > 1 {
		t.Errorf("two writable servers at once: %s", timeline.first(func(s writableSample) bool { return len(s.writable) > 1 }))
	}
	if res.MostHolders > 1 {
		t.Errorf("two holders of the address at once: %s", timeline.first(func(s writableSample) bool { return len(s.holders) > 1 }))
	}
	if len(lost) > 0 {
		t.Logf("acknowledged writes missing on the owner %s: %v", res.Owner, lost)
	}
}

// ownerStays fails unless node owns the database address.
func ownerStays(db *Database, node string) error {
	fip, err := db.FailoverIP(context.Background())
	if err != nil {
		return err
	}
	if fip.Status.Owner != node {
		return fmt.Errorf("owner %q at epoch %d, want %s", fip.Status.Owner, fip.Status.Epoch, node)
	}
	return nil
}

// DatabasePartition is what a partition between the two back-ends showed.
type DatabasePartition struct {
	For          time.Duration
	Owner        string
	Samples      int
	MostWritable int
	MostHolders  int
	Gap          time.Duration
	Acked        int
	Failed       int
	Lost         int
}

func (r DatabasePartition) String() string {
	return fmt.Sprintf("partitioned %s: at most %d writable server(s) and %d holder(s) in %d samples; owner after %s; longest write gap %s; %d writes acknowledged, %d failed, %d acknowledged lost",
		r.For, r.MostWritable, r.MostHolders, r.Samples, r.Owner, r.Gap.Round(time.Millisecond), r.Acked, r.Failed, r.Lost)
}

// dropTraffic drops (or stops dropping) every packet between the front and
// the address peer, both ways, in the front's namespace.
func (f *Front) dropTraffic(peer string, drop bool) error {
	op := "-I"
	if !drop {
		op = "-D"
	}
	for _, rule := range [][]string{{"INPUT", "-s", peer}, {"OUTPUT", "-d", peer}} {
		args := append([]string{"-w", op}, append(rule, "-j", "DROP")...)
		if _, err := f.Run("iptables", args...); err != nil && drop {
			return err
		}
	}
	return nil
}

// writableSample is which servers were writable and which nodes held the
// database address at one moment; unanswered lists the servers that did
// not answer.
type writableSample struct {
	at                            time.Time
	writable, holders, unanswered []string
}

func (s writableSample) String() string {
	return fmt.Sprintf("%s writable %v, holders %v, unanswered %v", s.at.Format("15:04:05.000"), s.writable, s.holders, s.unanswered)
}

type writableTimeline []writableSample

// changes are the samples that differ from the one before.
func (tl writableTimeline) changes() []string {
	var out []string
	last := ""
	for _, s := range tl {
		key := fmt.Sprint(s.writable, s.holders, s.unanswered)
		if key != last {
			out = append(out, s.String())
			last = key
		}
	}
	return out
}

func (tl writableTimeline) most(count func(writableSample) int) int {
	n := 0
	for _, s := range tl {
		n = max(n, count(s))
	}
	return n
}

func (tl writableTimeline) first(match func(writableSample) bool) string {
	if i := slices.IndexFunc(tl, match); i >= 0 {
		return tl[i].String()
	}
	return "none"
}

// sampleWritable samples, every 200 ms until the test ends, which servers
// of tr are writable (through their sockets, not the network) and which
// nodes hold the address; the returned func gives the samples so far.
func sampleWritable(t *testing.T, tr *databaseTrial) func() writableTimeline {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var samples writableTimeline
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			s := sampleOnce(tr)
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() writableTimeline {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(samples)
	}
}

func sampleOnce(tr *databaseTrial) writableSample {
	s := writableSample{at: time.Now()}
	for _, f := range []*Front{tr.primary, tr.replica} {
		ro, err := tr.db.Servers[f.Name].SQL("SELECT @@global.read_only")
		switch {
		case err != nil:
			s.unanswered = append(s.unanswered, f.Name)
		case strings.TrimSpace(ro) == "0":
			s.writable = append(s.writable, f.Name)
		}
		if held, err := f.HoldsAddress(DatabaseVIP); err == nil && held {
			s.holders = append(s.holders, f.Name)
		}
	}
	return s
}
