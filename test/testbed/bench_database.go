package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/webfarm/webfarm/internal/mariadbtest"
)

// The database rows of the failover bench (issue 13): MariaDB primary and
// semi-synchronous replica on the first two fronts, the client writing a
// numbered row through the database address every databaseWriteEvery, the
// primary's node lost hard. webfarm moves DatabaseVIP with the database
// FailoverIP (its MySQL check, its master hook before it announces);
// keepalived moves DatabaseKeepalivedVIP on the same servers, with a
// track_script that judges MariaDB as webfarm's check does and the same
// hooks as its notify scripts.

// DatabaseKeepalivedVIP is the address keepalived moves in the database
// rows: neither KeepalivedVIP (the front rows') nor DatabaseVIP.
const DatabaseKeepalivedVIP = "10.99.0.22"

const (
	// databaseRouterID is the database VRRP instance's virtual router id.
	databaseRouterID = 52
	// databaseWriteEvery is the client's write interval: the write gap's
	// resolution.
	databaseWriteEvery = 50 * time.Millisecond
	// databaseResumed is how many writes acknowledged after the loss count
	// as resumed.
	databaseResumed = 20
	// databaseResumeTimeout bounds the wait for writes to resume.
	databaseResumeTimeout = 90 * time.Second
)

// DatabaseTrial is one hard loss of the primary's node under the client's
// writes.
type DatabaseTrial struct {
	System, Settings string
	DatabaseFailover
	// Err says why the trial did not complete ("" when it did).
	Err string
}

// databaseMover is what moves the database address: webfarm's FailoverIP
// or keepalived.
type databaseMover interface {
	address() string
	// holder returns the one back-end other than old that holds the
	// address, "" while there is none.
	holder(ctx context.Context, old string) (string, error)
	// rejoined returns once front, back as a replica, may take the
	// address over again.
	rejoined(ctx context.Context, front string) error
}

// BenchDatabase runs the database rows on a running testbed: n hard losses
// of the primary's node with webfarm moving the address, then n with
// keepalived at each of its settings, on the same servers. It returns every
// trial, also those done before an error stopped it.
func BenchDatabase(ctx context.Context, tb *Testbed, n int, keepalived []KeepalivedSettings) (trials []DatabaseTrial, err error) {
	if len(tb.fronts) < 2 {
		return nil, fmt.Errorf("the database rows need 2 fronts, the testbed has %d", len(tb.fronts))
	}
	d, err := StartDatabase(ctx, tb, true)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, d.Close(ctx)) }()
	for _, s := range []WebfarmSettings{WebfarmDefaults, DatabaseSlower} {
		if err := d.setTimings(ctx, s); err != nil {
			return trials, err
		}
		settings := webfarmDatabaseSettings(ctx, d)
		tb.say("\n== database: webfarm (%s), for %s", settings, DatabaseVIP)
		got, err := d.trials(ctx, webfarmMover{d}, "webfarm", settings, n)
		trials = append(trials, got...)
		if err != nil {
			return trials, fmt.Errorf("webfarm %s: %w", s.Name, err)
		}
	}
	if err := d.deleteFailoverIP(ctx); err != nil {
		return trials, err
	}
	for _, s := range keepalived {
		got, err := d.keepalivedTrials(ctx, s, n)
		trials = append(trials, got...)
		if err != nil {
			return trials, fmt.Errorf("keepalived %s: %w", s, err)
		}
	}
	return trials, nil
}

// DatabaseSlower are the timings the defaults had before this project's
// heartbeats went peer to peer: a lone owner (its replica lost) proves
// itself alive through its Lease alone, and 2s leaves a loaded API server
// 1.5s to write it, where the defaults leave 550ms.
var DatabaseSlower = WebfarmSettings{"deadtime 2s", 500 * time.Millisecond, 2 * time.Second, 500 * time.Millisecond}

// setTimings sets the database FailoverIP's timings and waits until a
// back-end holds its address.
func (d *Database) setTimings(ctx context.Context, s WebfarmSettings) error {
	patch := fmt.Sprintf(`{"spec":{"keepalive":%q,"deadtime":%q,"guard":%q}}`, s.Keepalive, s.Deadtime, s.Guard)
	if _, err := d.tb.Kubectl("patch", "failoverips.webfarm.io", DatabaseFailoverIPName, "-n", SamplesNamespace, "--type", "merge", "-p", patch); err != nil {
		return err
	}
	_, err := waitHolder(ctx, webfarmMover{d}, "")
	return err
}

// trials runs n hard losses with m moving the address, each from the
// primary of the one before.
func (d *Database) trials(ctx context.Context, m databaseMover, system, settings string, n int) ([]DatabaseTrial, error) {
	var trials []DatabaseTrial
	for i := range n {
		if err := ctx.Err(); err != nil {
			return trials, err
		}
		t, err := d.hardLoss(ctx, m, semiSyncOn)
		t.System, t.Settings = system, settings
		trials = append(trials, t)
		d.tb.say("   hard loss #%d: %s%s", i+1, t.DatabaseFailover, errSuffix(t.Err))
		for _, e := range t.Timeline {
			d.tb.say("      %s", e)
		}
		if err != nil {
			return trials, err
		}
		if err := d.rejoin(ctx, m, t.From, t.To, semiSyncOn); err != nil {
			return trials, err
		}
	}
	return trials, nil
}

// semiSyncOn: the bench's servers replicate semi-synchronously.
const semiSyncOn = true

// hardLoss crashes the node of the primary behind m's address while the
// client writes, and measures until writes resume on the other back-end.
// A trial that does not complete says why in Err; err is for what stops
// the bench (the servers are no longer a pair to go on with).
func (d *Database) hardLoss(ctx context.Context, m databaseMover, semiSync bool) (DatabaseTrial, error) {
	t := DatabaseTrial{DatabaseFailover: DatabaseFailover{SemiSync: semiSync}}
	from, err := waitHolder(ctx, m, "")
	if err != nil {
		return t, err
	}
	t.From = from
	first, err := d.Servers[from].SQL("SELECT COALESCE(MAX(id), 0) + 1 FROM trial.writes")
	if err != nil {
		return t, err
	}
	var next int64
	if _, err := fmt.Sscan(first, &next); err != nil {
		return t, fmt.Errorf("the next row id %q: %w", first, err)
	}
	w, err := NewWriterTo(m.address(), databaseWriteEvery, next)
	if err != nil {
		return t, err
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { w.Run(wctx); close(done) }()
	stopWriter := func() { stop(); <-done }
	start := time.Now()
	if err := WaitFor(func() (bool, error) { return w.AckedSince(start) >= databaseResumed, nil }, 30*time.Second); err != nil {
		stopWriter()
		return t, fmt.Errorf("the client never wrote steadily through %s: %v", m.address(), lastFailures(w, 3))
	}
	arp, err := d.watchClaims(m.address(), from)
	if err != nil {
		stopWriter()
		return t, err
	}
	marks := d.tb.markLogs()
	lost := time.Now()
	if err := d.tb.Front(from).Crash(); err != nil {
		stopWriter()
		arp.Stop()
		return t, err
	}
	if err := WaitFor(func() (bool, error) { return w.AckedSince(lost) >= databaseResumed, nil }, databaseResumeTimeout); err != nil {
		t.Err = fmt.Sprintf("writes never resumed: %v", lastFailures(w, 3))
	}
	stopWriter()
	arp.Stop()
	t.TwoAnswerers = len(arp.Conflicts(probeInterval / 2))
	t.Timeline = d.tb.timeline(marks, lost, arp, from)
	if t.To, err = waitHolder(ctx, m, from); err != nil {
		return t, err
	}
	d.measure(&t.DatabaseFailover, w, lost)
	return t, nil
}

// waitHolder waits until a back-end other than old holds m's address, and
// names it.
func waitHolder(ctx context.Context, m databaseMover, old string) (string, error) {
	var holder string
	err := WaitFor(func() (bool, error) {
		var err error
		holder, err = m.holder(ctx, old)
		return holder != "", err
	}, changeTimeout)
	if err != nil {
		return "", fmt.Errorf("no back-end other than %q holds %s: %w", old, m.address(), err)
	}
	return holder, nil
}

// watchClaims starts the ARP watcher for address and waits until it saw
// from claim it, so that the timeline has the old holder's last claim.
func (d *Database) watchClaims(address, from string) (*ARPWatcher, error) {
	arp, err := d.tb.WatchARPFor(address)
	if err != nil {
		return nil, err
	}
	err = WaitFor(func() (bool, error) {
		return slices.ContainsFunc(arp.Events(), func(e ARPEvent) bool { return e.Front == from }), nil
	}, 5*time.Second)
	if err != nil {
		arp.Stop()
		return nil, fmt.Errorf("the ARP watcher never saw %s claim %s: %w", from, address, err)
	}
	return arp, nil
}

// measure fills r from the writer's record after the loss at lost.
func (d *Database) measure(r *DatabaseFailover, w *Writer, lost time.Time) {
	acked := w.Acked()
	r.Acked = len(acked)
	r.Gap = longestGap(acked, lost.Add(-time.Second))
	for _, f := range w.Failed() {
		if f.At.After(lost) {
			r.Failed++
		}
	}
	ids, err := d.Lost(r.To, acked)
	if err != nil {
		r.Lost, r.LostIDs = -1, nil
		return
	}
	r.Lost, r.LostIDs = len(ids), ids
}

// rejoin brings the crashed front back as after a reboot, its server as a
// replica of primary, and waits until m may move the address to it again.
func (d *Database) rejoin(ctx context.Context, m databaseMover, front, primary string, semiSync bool) error {
	f := d.tb.Front(front)
	if err := f.Recover(); err != nil {
		return err
	}
	server, err := StartMariaDB(f, d.serverID(front))
	if err != nil {
		return err
	}
	d.Servers[front] = server
	if err := d.reseed(front, primary, semiSync); err != nil {
		return err
	}
	return m.rejoined(ctx, front)
}

// reseed makes the server of front a replica of primary's from now on,
// without the rows either has: the bench's writer starts each trial past
// the primary's last id, and a crashed primary may hold rows its replica
// never acknowledged, which would stop the replication of the next ones.
func (d *Database) reseed(front, primary string, semiSync bool) error {
	p, r := d.Servers[primary], d.Servers[front]
	pos, err := p.SQL("SELECT @@global.gtid_binlog_pos")
	if err != nil {
		return err
	}
	semi := "0"
	if semiSync {
		semi = "1"
	}
	if _, err := p.SQL("SET GLOBAL rpl_semi_sync_master_enabled = " + semi); err != nil {
		return err
	}
	reset := fmt.Sprintf("STOP SLAVE; RESET SLAVE ALL; SET sql_log_bin = 0; TRUNCATE TABLE trial.writes; RESET MASTER; SET GLOBAL gtid_slave_pos = '%s';\n", pos)
	if _, err := r.SQL(reset + d.replicate(primary, semiSync)); err != nil {
		return fmt.Errorf("reseeding %s from %s: %w", front, primary, err)
	}
	// Every write from now on waits for this replica's acknowledgement.
	want := "Rpl_semi_sync_master_clients\t1"
	if !semiSync {
		want = ""
	}
	var running, clients string
	err = WaitFor(func() (bool, error) {
		// Both replication threads run (SHOW SLAVE STATUS names no
		// column under SQL's --skip-column-names).
		if running, err = r.SQL("SHOW GLOBAL STATUS LIKE 'Slave_running'"); err != nil || running != "Slave_running\tON" {
			return false, err
		}
		clients, err = p.SQL("SHOW STATUS LIKE 'Rpl_semi_sync_master_clients'")
		return strings.Contains(clients, want), err
	}, 30*time.Second)
	if err != nil {
		status, _ := r.SQL("SHOW SLAVE STATUS")
		return fmt.Errorf("reseeding %s from %s: %q, %q: %w; SHOW SLAVE STATUS: %s", front, primary, running, clients, err, status)
	}
	return nil
}

func (d *Database) replicate(primary string, semiSync bool) string {
	return mariadbtest.Replicate(d.tb.Front(primary).Address, semiSync)
}

// serverID is the MariaDB server id of front's server: its position among
// the fronts, from 1, as StartDatabase gives it.
func (d *Database) serverID(front string) int {
	return slices.IndexFunc(d.tb.fronts, func(f *Front) bool { return f.Name == front }) + 1
}

// webfarmMover is the database FailoverIP.
type webfarmMover struct{ d *Database }

func (webfarmMover) address() string { return DatabaseVIP }

func (w webfarmMover) holder(ctx context.Context, old string) (string, error) {
	fip, err := w.d.FailoverIP(ctx)
	if err != nil || fip.Status.Owner == "" || fip.Status.Owner == old {
		return "", err
	}
	held, err := w.d.tb.Front(fip.Status.Owner).HoldsAddress(DatabaseVIP)
	if err != nil || !held {
		return "", err
	}
	return fip.Status.Owner, nil
}

func (w webfarmMover) rejoined(ctx context.Context, front string) error {
	return w.d.WaitCandidate(ctx, front, time.Minute)
}

// webfarmDatabaseSettings describes the database FailoverIP's timings and
// check.
func webfarmDatabaseSettings(ctx context.Context, d *Database) string {
	fip, err := d.FailoverIP(ctx)
	if err != nil || len(fip.Spec.Checks) == 0 {
		return "database FailoverIP"
	}
	c := fip.Spec.Checks[0]
	return fmt.Sprintf("keepalive %s, deadtime %s; check every %s, timeout %s, rise %d, fall %d",
		fip.Spec.Keepalive.Duration, fip.Spec.Deadtime.Duration, c.Interval.Duration, c.Timeout.Duration, c.Rise, c.Fall)
}

// keepalivedMover is keepalived on the two back-ends.
type keepalivedMover struct{ kf *keepalivedFarm }

func (k keepalivedMover) address() string { return k.kf.address }

func (k keepalivedMover) holder(_ context.Context, old string) (string, error) {
	return k.kf.movedFrom(old)
}

// rejoined starts keepalived again on the front and waits until it is
// BACKUP: its track_script passes, so it may take the address over.
func (k keepalivedMover) rejoined(_ context.Context, front string) error {
	d := k.kf.daemonOf(front)
	if d == nil {
		return fmt.Errorf("keepalived: no front %s", front)
	}
	_ = os.Remove(d.stateFile())
	if err := k.kf.restart(front); err != nil {
		return err
	}
	return d.waitState("BACKUP")
}

// The keepalived database instance's scripts, written into each front's
// keepalived directory. The check judges MariaDB as webfarm's built-in
// check does (checks.Judge): a writable server that replicates from nobody
// or whose replication is stopped, or a read-only replica whose SQL thread
// has not failed. record-state keeps the instance's state in a file, for
// the bench to wait on.
const (
	keepalivedCheckMariaDB = `#!/bin/sh
defaults=%s/mariadb.cnf
q() { mariadb --defaults-extra-file="$defaults" --connect-timeout=1 -N -B -e "$1"; }
ro=$(q 'SELECT @@global.read_only') || exit 1
status=$(mariadb --defaults-extra-file="$defaults" --connect-timeout=1 -e 'SHOW SLAVE STATUS\G') || exit 1
field() { printf '%%s\n' "$status" | sed -n "s/^ *$1: //p"; }
if [ "$ro" = 0 ]; then
	[ -z "$status" ] || [ "$(field Slave_SQL_Running)" != Yes ]
	exit
fi
[ -n "$status" ] && [ "$(field Last_SQL_Errno)" = 0 ]
`
	keepalivedRecordState = `#!/bin/sh
# notify: $1 is the state file; keepalived adds TYPE NAME STATE PRIORITY.
echo "$4" > "$1.new" && mv "$1.new" "$1"
`
)

// databaseInstance is the keepalived database instance: the track_script
// as webfarm's database FailoverIP checks (every second, rise 2, fall 3),
// the chart's MariaDB hooks as notify scripts. No notify_backup: keepalived
// enters BACKUP at its start, and fencing there would make the primary
// read-only before it first takes the address; a keepalived user fences
// on fault.
func databaseInstance(s KeepalivedSettings, hooks string) vrrpInstance {
	return vrrpInstance{name: "database", address: DatabaseKeepalivedVIP, routerID: databaseRouterID, settings: s,
		scripts: `
vrrp_script mariadb {
    script "{{dir}}/check-mariadb"
    interval 1
    timeout 1
    rise 2
    fall 3
}
`,
		extra: fmt.Sprintf(`    track_script {
        mariadb
    }
    notify_master "%[1]s/mariadb-promote"
    notify_fault "/usr/bin/env WEBFARM_STATE=fault %[1]s/mariadb-fence"
    notify "{{dir}}/record-state {{dir}}/state"
`, hooks)}
}

// keepalivedDatabaseSettings describes the keepalived row's settings.
func keepalivedDatabaseSettings(s KeepalivedSettings) string {
	return s.String() + "; track_script every 1s, timeout 1s, rise 2, fall 3"
}

// keepalivedTrials starts keepalived on the two back-ends, the primary's
// first so that it takes the address, and runs n hard losses.
func (d *Database) keepalivedTrials(ctx context.Context, s KeepalivedSettings, n int) (trials []DatabaseTrial, err error) {
	settings := keepalivedDatabaseSettings(s)
	d.tb.say("\n== database: keepalived (%s), for %s", settings, DatabaseKeepalivedVIP)
	kf, err := d.startKeepalived(s)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, kf.Stop()) }()
	return d.trials(ctx, keepalivedMover{kf}, "keepalived", settings, n)
}

// startKeepalived starts keepalived on the two back-ends: on the writable
// primary first, until it holds the address, then on the replica, until it
// is BACKUP.
func (d *Database) startKeepalived(s KeepalivedSettings) (*keepalivedFarm, error) {
	primary, err := d.writablePrimary()
	if err != nil {
		return nil, err
	}
	return d.tb.runKeepalived(d.tb.fronts[:2], databaseInstance(s, d.tb.HooksDir()), func(kf *keepalivedFarm) error {
		check := fmt.Sprintf(keepalivedCheckMariaDB, d.tb.HooksDir())
		for _, k := range kf.daemon {
			if err := writeScripts(k.dir, map[string]string{"check-mariadb": check, "record-state": keepalivedRecordState}); err != nil {
				return err
			}
		}
		first := kf.daemonOf(primary)
		if err := first.Start(); err != nil {
			return err
		}
		if err := first.waitState("MASTER"); err != nil {
			return err
		}
		if _, err := kf.waitHolder(""); err != nil {
			return err
		}
		second := kf.daemonOf(d.other(primary))
		if err := second.Start(); err != nil {
			return err
		}
		return second.waitState("BACKUP")
	})
}

// writablePrimary names the back-end whose server is writable: the one
// the webfarm trials left as primary. Its hooks may have fenced it when
// the FailoverIP went: it is made writable again, as it replicates from
// nobody and its replica from it.
func (d *Database) writablePrimary() (string, error) {
	for _, f := range d.tb.fronts[:2] {
		status, err := d.Servers[f.Name].SQL("SHOW SLAVE STATUS")
		if err != nil {
			return "", err
		}
		if status == "" {
			_, err := d.Servers[f.Name].SQL("SET GLOBAL read_only = 0")
			return f.Name, err
		}
	}
	return "", errors.New("both servers replicate: no primary")
}

// other is the back-end that is not front.
func (d *Database) other(front string) string {
	if d.tb.fronts[0].Name == front {
		return d.tb.fronts[1].Name
	}
	return d.tb.fronts[0].Name
}

// daemonOf is the keepalived of front; nil when it runs none.
func (kf *keepalivedFarm) daemonOf(front string) *keepalived {
	for _, k := range kf.daemon {
		if k.front.Name == front {
			return k
		}
	}
	return nil
}

// stateFile is where record-state keeps the instance's state.
func (k *keepalived) stateFile() string { return filepath.Join(k.dir, "state") }

// waitState waits until keepalived says it entered state.
func (k *keepalived) waitState(state string) error {
	var got []byte
	err := WaitFor(func() (bool, error) {
		got, _ = os.ReadFile(k.stateFile())
		return strings.TrimSpace(string(got)) == state, nil
	}, changeTimeout)
	if err != nil {
		return fmt.Errorf("keepalived on %s: state %q, want %s: %w\n%s", k.front.Name, strings.TrimSpace(string(got)), state, err, k.proc.LogTail(15))
	}
	return nil
}

func writeScripts(dir string, scripts map[string]string) error {
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// WriteDatabaseTable prints one line per system and settings.
func WriteDatabaseTable(w io.Writer, trials []DatabaseTrial) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SYSTEM\tSETTINGS\tREPLICATION\tDONE\tWRITE GAP med / max\tFAILED WRITES (total, max)\tACKED WRITES LOST (total of acked)\tTWO ANSWERERS")
	for _, s := range summarizeDatabase(trials) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%d, max %d\t%d of %d\t%d\n",
			s.system, s.settings, s.replication, s.done, s.trials, s.gap, s.failed, s.mostFailed, s.lost, s.acked, s.twoAnswerers)
	}
	tw.Flush()
	fmt.Fprintf(w, `
WRITE GAP: the longest time between two acknowledged writes of the client
  (one INSERT of a numbered row every %s, each on a new connection through
  the address, 500 ms connect and 1 s read timeouts), from a second before
  the primary's node was lost (every process SIGKILLed, its link down).
ACKED WRITES LOST: acknowledged writes the new primary does not have.
TWO ANSWERERS: pairs of ARP claims for the address by two MACs less than
  %s apart, seen from the client namespace.
DONE: trials in which writes resumed (the gaps are over those).
`, databaseWriteEvery, probeInterval/2)
}

type databaseSummary struct {
	system, settings, replication           string
	trials, done, failed, mostFailed, acked int
	lost, twoAnswerers                      int
	gap                                     Spread
}

func summarizeDatabase(trials []DatabaseTrial) []databaseSummary {
	var out []databaseSummary
	var gaps [][]time.Duration
	for _, t := range trials {
		repl := "async"
		if t.SemiSync {
			repl = "semi-sync"
		}
		i := slices.IndexFunc(out, func(s databaseSummary) bool {
			return s.system == t.System && s.settings == t.Settings && s.replication == repl
		})
		if i < 0 {
			out = append(out, databaseSummary{system: t.System, settings: t.Settings, replication: repl})
			gaps = append(gaps, nil)
			i = len(out) - 1
		}
		s := &out[i]
		s.trials++
		s.failed += t.Failed
		s.mostFailed = max(s.mostFailed, t.Failed)
		s.acked += t.Acked
		s.lost += t.Lost
		s.twoAnswerers += t.TwoAnswerers
		if t.Err == "" {
			s.done++
			gaps[i] = append(gaps[i], t.Gap)
		}
	}
	for i := range out {
		out[i].gap = spread(gaps[i])
	}
	return out
}
