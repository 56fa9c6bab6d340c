package testbed

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/mariadbtest"
	"github.com/webfarm/webfarm/internal/testenv"
)

// The database trial (issue 13): two fronts double as back-ends, each with
// a MariaDB server in its namespace, primary and GTID replica; a standalone
// FailoverIP at DatabaseVIP selects them by DatabaseLabel, checks MariaDB
// with the built-in MySQL check, promotes the replica with the chart's
// mariadb-promote hook before it announces the address, and fences a
// demoted server with mariadb-fence.
//
// The database addresses are apart from KeepalivedVIP, which the front
// bench's keepalived rows move, so that no ARP cache of the client maps a
// database address to the MAC of a front bench's holder.
const (
	DatabaseVIP            = "10.99.0.21"
	DatabaseFailoverIPName = "database"
	DatabaseLabel          = "webfarm.io/database"
	databaseSecret         = "database-monitor"
)

// DatabaseHooksDir prepares dir as the agents' --hooks-dir: the chart's
// hooks, with the mariadb.cnf they read beside them.
func DatabaseHooksDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	src := filepath.Join(testenv.RepoRoot(), "charts", "webfarm", "files", "hooks")
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "mariadb.cnf"), []byte(mariadbtest.ClientConfig()), 0o600)
}

// Database is the trial's pair of servers and its FailoverIP.
type Database struct {
	tb      *Testbed
	Servers map[string]*MariaDB // by front name
}

// StartDatabase starts MariaDB on the first two fronts, the first the
// primary, the second its replica, and the FailoverIP; it returns once the
// primary's node holds the address. Only the primary's node is labelled
// first: an election that found both candidates at once could name the
// replica, and its master hook would promote it beside a live primary.
func StartDatabase(ctx context.Context, tb *Testbed, semiSync bool) (*Database, error) {
	d := &Database{tb: tb, Servers: map[string]*MariaDB{}}
	primary, replica := tb.fronts[0], tb.fronts[1]
	for i, f := range []*Front{primary, replica} {
		m, err := StartMariaDB(f, i+1)
		if err != nil {
			d.Stop()
			return nil, err
		}
		d.Servers[f.Name] = m
	}
	if err := d.Servers[primary.Name].BootstrapPrimary(semiSync); err != nil {
		d.Stop()
		return nil, err
	}
	if err := d.Servers[replica.Name].ReplicateFrom(primary.Address, semiSync); err != nil {
		d.Stop()
		return nil, err
	}
	if err := WaitFor(func() (bool, error) {
		_, err := d.Servers[replica.Name].SQL("SELECT COUNT(*) FROM trial.writes")
		return err == nil, nil
	}, 30*time.Second); err != nil {
		d.Stop()
		return nil, fmt.Errorf("the replica never caught up: %w", err)
	}
	tb.say("database: MariaDB primary on %s, GTID replica on %s (semi-sync %v)", primary.Name, replica.Name, semiSync)
	if err := d.createFailoverIP(ctx, primary.Name); err != nil {
		d.Stop()
		return nil, err
	}
	if err := d.label(ctx, primary.Name); err != nil {
		d.Stop()
		return nil, err
	}
	if err := WaitFor(func() (bool, error) { return primary.HoldsAddress(DatabaseVIP) }, time.Minute); err != nil {
		d.Stop()
		return nil, fmt.Errorf("%s never held the database address: %w", primary.Name, err)
	}
	if err := d.label(ctx, replica.Name); err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}

func (d *Database) label(ctx context.Context, node string) error {
	patch := []byte(fmt.Sprintf(`{"metadata":{"labels":{%q:"true"}}}`, DatabaseLabel))
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
	if err := d.tb.KubeClient().Patch(ctx, n, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		return fmt.Errorf("labelling node %s: %w", node, err)
	}
	return nil
}

func (d *Database) createFailoverIP(ctx context.Context, preferred string) error {
	c := d.tb.KubeClient()
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: SamplesNamespace, Name: databaseSecret},
		StringData: map[string]string{"username": mariadbtest.AdminUser, "password": mariadbtest.AdminPass},
	}
	if err := c.Create(ctx, secret); err != nil {
		return fmt.Errorf("creating the database Secret: %w", err)
	}
	fip := &webfarmv1.FailoverIP{
		ObjectMeta: metav1.ObjectMeta{Namespace: SamplesNamespace, Name: DatabaseFailoverIPName},
		Spec: webfarmv1.FailoverIPSpec{
			Address: DatabaseVIP,
			// A typed client sends zero durations, not the defaults.
			// Deadtime 2s, as config/samples/database/failoverip.yaml:
			// the server left after a loss proves itself only through the
			// API server (witnesses, acknowledged Lease renewals), whose
			// writes took up to 1.1 s on a loaded testbed (docs/install.md).
			Keepalive:     metav1.Duration{Duration: 200 * time.Millisecond},
			Deadtime:      metav1.Duration{Duration: 2 * time.Second},
			Guard:         metav1.Duration{Duration: 150 * time.Millisecond},
			NodeSelector:  &metav1.LabelSelector{MatchLabels: map[string]string{DatabaseLabel: "true"}},
			PreferredNode: preferred,
			Checks: []webfarmv1.HealthCheck{{
				Name: "mariadb", Type: webfarmv1.CheckMySQL,
				MySQL: &webfarmv1.MySQLCheck{
					CredentialsSecretRef:   webfarmv1.LocalObjectReference{Name: databaseSecret},
					AllowPromotableReplica: true,
				},
				// keepalived's interval 1, with room for a loaded machine:
				// a check that times out twice moves the database.
				Interval: metav1.Duration{Duration: time.Second},
				Timeout:  metav1.Duration{Duration: 900 * time.Millisecond},
				Rise:     2, Fall: 3,
			}},
			Hooks: &webfarmv1.NotifyHooks{
				Master: "mariadb-promote", Backup: "mariadb-fence", Fault: "mariadb-fence",
				MasterBeforeAnnounce: true,
				Timeout:              metav1.Duration{Duration: 30 * time.Second},
			},
		},
	}
	if err := c.Create(ctx, fip); err != nil {
		return fmt.Errorf("creating the database FailoverIP: %w", err)
	}
	return nil
}

// FailoverIP reads the database FailoverIP.
func (d *Database) FailoverIP(ctx context.Context) (*webfarmv1.FailoverIP, error) {
	var fip webfarmv1.FailoverIP
	err := d.tb.KubeClient().Get(ctx, client.ObjectKey{Namespace: SamplesNamespace, Name: DatabaseFailoverIPName}, &fip)
	return &fip, err
}

// WaitCandidate waits until node's checks make it a candidate of the
// database FailoverIP.
func (d *Database) WaitCandidate(ctx context.Context, node string, timeout time.Duration) error {
	var fip *webfarmv1.FailoverIP
	err := WaitFor(func() (bool, error) {
		var err error
		if fip, err = d.FailoverIP(ctx); err != nil {
			return false, err
		}
		return slices.Contains(fip.Status.Candidates, node), nil
	}, timeout)
	if err != nil {
		return fmt.Errorf("%s never became a candidate: %w; nodes %+v", node, err, fip.Status.Nodes)
	}
	return nil
}

// deleteFailoverIP deletes the database FailoverIP and waits until no
// front holds its address.
func (d *Database) deleteFailoverIP(ctx context.Context) error {
	fip := &webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Namespace: SamplesNamespace, Name: DatabaseFailoverIPName}}
	if err := client.IgnoreNotFound(d.tb.KubeClient().Delete(ctx, fip)); err != nil {
		return fmt.Errorf("deleting the database FailoverIP: %w", err)
	}
	return WaitFor(func() (bool, error) {
		for _, f := range d.tb.fronts {
			if held, err := f.HoldsAddress(DatabaseVIP); err != nil || held {
				return false, err
			}
		}
		return true, nil
	}, changeTimeout)
}

// Close undoes StartDatabase on a testbed that goes on: the FailoverIP
// and its Secret go, the nodes lose the database label, the servers stop.
func (d *Database) Close(ctx context.Context) error {
	errs := []error{d.deleteFailoverIP(ctx)}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: SamplesNamespace, Name: databaseSecret}}
	errs = append(errs, client.IgnoreNotFound(d.tb.KubeClient().Delete(ctx, secret)))
	for name := range d.Servers {
		patch := []byte(fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, DatabaseLabel))
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		errs = append(errs, d.tb.KubeClient().Patch(ctx, n, client.RawPatch("application/merge-patch+json", patch)))
	}
	d.Stop()
	return errors.Join(errs...)
}

// Stop stops every server it started that still runs.
func (d *Database) Stop() {
	for _, m := range d.Servers {
		if m.Running() {
			_ = m.Stop()
		}
	}
}

// Writer writes numbered rows through the database address from the
// client namespace at a steady rate, one connection per write, and
// records which were acknowledged.
type Writer struct {
	db       *sql.DB
	interval time.Duration

	mu     sync.Mutex
	next   int64
	acked  []Write
	failed []Write
}

// Write is one attempt.
type Write struct {
	ID  int64
	At  time.Time // when it was acknowledged, or failed
	Err error
}

var registerDial sync.Once

// NewWriter prepares a writer of one row every interval through
// DatabaseVIP, from id 1.
func NewWriter(interval time.Duration) (*Writer, error) { return NewWriterTo(DatabaseVIP, interval, 1) }

// NewWriterTo prepares a writer of one row every interval through address,
// the first with id first.
func NewWriterTo(address string, interval time.Duration, first int64) (*Writer, error) {
	registerDial.Do(func() {
		dial := DialInNamespace(ClientNS)
		mysql.RegisterDialContext("wfclient", func(ctx context.Context, addr string) (net.Conn, error) { return dial(ctx, "tcp", addr) })
	})
	dsn := fmt.Sprintf("%s:%s@wfclient(%s:3306)/trial?timeout=500ms&readTimeout=1s&writeTimeout=1s", mariadbtest.AppUser, mariadbtest.AppPass, address)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, err
	}
	// A new connection for every write: each one finds the address where
	// it is now.
	db.SetMaxIdleConns(0)
	return &Writer{db: db, interval: interval, next: first}, nil
}

// Run writes until ctx is done.
func (w *Writer) Run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	defer w.db.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		id := w.next
		w.next++
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := w.db.ExecContext(wctx, "INSERT INTO writes (id) VALUES (?)", id)
		cancel()
		w.mu.Lock()
		if err == nil {
			w.acked = append(w.acked, Write{ID: id, At: time.Now()})
		} else if ctx.Err() == nil {
			w.failed = append(w.failed, Write{ID: id, At: time.Now(), Err: err})
		}
		w.mu.Unlock()
	}
}

// Acked returns the acknowledged writes so far.
func (w *Writer) Acked() []Write {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Write(nil), w.acked...)
}

// Failed returns the failed writes so far.
func (w *Writer) Failed() []Write {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Write(nil), w.failed...)
}

// AckedSince counts the writes acknowledged after t.
func (w *Writer) AckedSince(t time.Time) int {
	n := 0
	for _, a := range w.Acked() {
		if a.At.After(t) {
			n++
		}
	}
	return n
}

// checkMessages lists the checks' states and messages.
func checkMessages(checks []webfarmv1.CheckResult) string {
	var parts []string
	for _, c := range checks {
		parts = append(parts, c.Name+"="+string(c.State)+" ("+c.Message+")")
	}
	return strings.Join(parts, ", ")
}

// lastFailures are the errors of the writer's last n failed writes.
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

// DatabaseFailover is what one hard loss of the primary showed.
type DatabaseFailover struct {
	SemiSync bool
	From, To string
	// Gap is the longest time between two acknowledged writes from a
	// second before the loss on.
	Gap time.Duration
	// Failed counts the writes that failed meanwhile.
	Failed int
	// Acked counts the writes acknowledged in all; Lost those of them the
	// new primary does not have.
	Acked, Lost int
	LostIDs     []int64
	// TwoAnswerers counts the pairs of ARP claims for the address by two
	// MACs less than half a probe interval apart (ARPWatcher.Conflicts).
	TwoAnswerers int
	// Timeline places the move in time, from the loss (Testbed.timeline).
	Timeline []string
}

func (r DatabaseFailover) String() string {
	return fmt.Sprintf("semi-sync %-5v %s -> %s: write gap %s, %d writes failed meanwhile, %d of %d acknowledged writes lost %v, %d two-answerer instants",
		r.SemiSync, r.From, r.To, r.Gap.Round(time.Millisecond), r.Failed, r.Lost, r.Acked, r.LostIDs, r.TwoAnswerers)
}

// Lost returns the acknowledged writes the server on front does not have.
func (d *Database) Lost(front string, acked []Write) ([]int64, error) {
	out, err := d.Servers[front].SQL("SELECT id FROM trial.writes")
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, line := range strings.Fields(out) {
		have[line] = true
	}
	var lost []int64
	for _, a := range acked {
		if !have[fmt.Sprint(a.ID)] {
			lost = append(lost, a.ID)
		}
	}
	sort.Slice(lost, func(i, j int) bool { return lost[i] < lost[j] })
	return lost, nil
}

// longestGap is the longest time between two acknowledged writes after
// from: the writes a crash still lets through (it takes a moment to kill
// everything) do not hide the gap that follows them.
func longestGap(acked []Write, from time.Time) time.Duration {
	var longest time.Duration
	var prev time.Time
	for _, a := range acked {
		if a.At.Before(from) {
			continue
		}
		if !prev.IsZero() && a.At.Sub(prev) > longest {
			longest = a.At.Sub(prev)
		}
		prev = a.At
	}
	return longest
}
