package checks

import (
	"context"
	"database/sql"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/webfarm/webfarm/internal/mariadbtest"
	"github.com/webfarm/webfarm/internal/netnstest"
	"github.com/webfarm/webfarm/internal/testenv"
)

// server is a mariadbd this test runs in a namespace of its own.
type server struct {
	ns  *netnstest.NS
	dir string
	cmd *exec.Cmd
}

func startServer(t *testing.T, ns *netnstest.NS, serverID int) *server {
	t.Helper()
	s := &server{ns: ns, dir: filepath.Join(t.TempDir(), "db")}
	if err := mariadbtest.Install(s.dir); err != nil {
		t.Fatal(err)
	}
	s.start(t, serverID)
	return s
}

func (s *server) start(t *testing.T, serverID int) {
	t.Helper()
	args := mariadbtest.Args(s.dir, serverID)
	s.cmd = s.ns.Command(args[0], args[1:]...)
	log, err := os.Create(filepath.Join(s.dir, "mariadbd.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd := s.cmd
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		_, err := mariadbtest.SQL(s.dir, "SELECT 1")
		return err == nil, nil
	}); err != nil {
		out, _ := os.ReadFile(filepath.Join(s.dir, "mariadbd.log"))
		t.Fatalf("mariadbd in %s never answered: %v\n%s", s.ns.Name, err, out)
	}
}

func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

func (s *server) sql(t *testing.T, q string) string {
	t.Helper()
	out, err := mariadbtest.SQL(s.dir, q)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// probe runs the MySQL check on s's own loopback, as s's agent would.
func (s *server) probe(t *testing.T, allowReplica bool) (string, error) {
	t.Helper()
	network := "ns-" + s.ns.Name
	mysql.RegisterDialContext(network, func(ctx context.Context, addr string) (net.Conn, error) {
		var c net.Conn
		err := s.ns.Do(func() error {
			var d net.Dialer
			var err error
			c, err = d.DialContext(ctx, "tcp", addr)
			return err
		})
		return c, err
	})
	p, err := NewMySQLProbe(MySQLOptions{Address: "127.0.0.1:3306", Net: network, Username: mariadbtest.AdminUser, Password: mariadbtest.AdminPass, AllowReplica: allowReplica})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return p.Run(ctx)
}

// hook runs one of the chart's MariaDB hooks in s's namespace, as s's
// agent would, and returns its output and error.
func (s *server) hook(t *testing.T, name, state string, env ...string) (string, error) {
	t.Helper()
	cnf := filepath.Join(s.dir, "client.cnf")
	if err := os.WriteFile(cnf, []byte(mariadbtest.ClientConfig()), 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(testenv.RepoRoot(), "charts", "webfarm", "files", "hooks", name)
	args := append([]string{"WEBFARM_MARIADB_DEFAULTS=" + cnf, "WEBFARM_STATE=" + state, "WEBFARM_EPOCH=7", "WEBFARM_NODE=" + s.ns.Name, "WEBFARM_PREVIOUS_OWNER=old"}, env...)
	cmd := s.ns.Command("env", append(args, script, state)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestNodeMySQLCheckAndHooks runs the MySQL check and the chart's MariaDB
// hooks against a real primary and GTID replica (semi-synchronous), each in
// a namespace of its own: the check passes the primary and a promotable
// replica; mariadb-promote applies the relay log and makes the replica the
// writable primary, with every row the primary acknowledged; mariadb-fence
// makes the old primary read-only, after which the check fails it and
// mariadb-promote refuses it — unless the address comes back to it with no
// other owner in between; a dead server is fenced already.
func TestNodeMySQLCheckAndHooks(t *testing.T) {
	netnstest.Skip(t)
	if _, err := exec.LookPath("mariadbd"); err != nil {
		t.Skip("mariadbd not installed (hack/install-packages.sh)")
	}
	primary, replica := startPair(t)
	for i := 1; i <= 100; i++ {
		primary.sql(t, "INSERT INTO trial.writes (id) VALUES ("+strconv.Itoa(i)+")")
	}

	expect := func(s *server, allowReplica, pass bool, contains string) {
		t.Helper()
		msg, err := s.probe(t, allowReplica)
		t.Logf("%s (allowReplica %v): %q %v", s.ns.Name, allowReplica, msg, err)
		if (err == nil) != pass || !strings.Contains(msg+errString(err), contains) {
			t.Errorf("%s: check = %q, %v; want pass %v, saying %q", s.ns.Name, msg, err, pass, contains)
		}
	}
	expect(primary, false, true, "primary")
	expect(replica, true, true, "promotable replica")
	expect(replica, false, false, "allowPromotableReplica is off")

	// The primary dies; its replica has every acknowledged row in its relay
	// log at least, and is promoted by the master hook. A first master
	// hook was killed half-way, after STOP SLAVE (the agent stopped it):
	// the replica still passes, and the next run finishes the promotion.
	primary.kill()
	replica.sql(t, "STOP SLAVE")
	expect(replica, true, true, "replication stopped without error")
	start := time.Now()
	out, err := replica.hook(t, "mariadb-promote", "master")
	t.Logf("mariadb-promote on the replica (%s): %s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("mariadb-promote: %v: %s", err, out)
	}
	if n := replica.sql(t, "SELECT COUNT(*) FROM trial.writes"); n != "100" {
		t.Errorf("the promoted replica has %s of the 100 acknowledged rows", n)
	}
	expect(replica, false, true, "primary")
	if out, err := replica.hook(t, "mariadb-promote", "master"); err != nil || !strings.Contains(out, "already") {
		t.Errorf("mariadb-promote again: %q, %v; want idempotent", out, err)
	}

	// A dead server takes no writes: fenced already.
	if out, err := primary.hook(t, "mariadb-fence", "fault"); err != nil || !strings.Contains(out, "does not answer") {
		t.Errorf("mariadb-fence on a dead server: %q, %v", out, err)
	}
	// The old primary returns read-only and replicating from nobody.
	primary.start(t, 1)
	expect(primary, true, false, "fenced former primary")
	if out, err := primary.hook(t, "mariadb-promote", "master"); err == nil {
		t.Errorf("mariadb-promote made a fenced former primary writable: %q", out)
	} else {
		t.Logf("mariadb-promote on the fenced former primary refuses: %s", out)
	}
	// A demoted primary that still runs is made read-only by the fence.
	primary.sql(t, "SET GLOBAL read_only = 0")
	expect(primary, true, true, "primary")
	if out, err := primary.hook(t, "mariadb-fence", "backup"); err != nil {
		t.Fatalf("mariadb-fence: %v: %s", err, out)
	}
	if ro := primary.sql(t, "SELECT @@global.read_only"); ro != "1" {
		t.Errorf("after mariadb-fence: read_only %s", ro)
	}
	expect(primary, true, false, "fenced former primary")

	// Named after an epoch without owner: the history decides. Another
	// node held the address last: its server may have taken writes since.
	if out, err := primary.hook(t, "mariadb-promote", "master", "WEBFARM_PREVIOUS_OWNER=", "WEBFARM_LAST_OWNER="+replica.ns.Name); err == nil {
		t.Errorf("mariadb-promote made writable a fenced primary that another node followed: %q", out)
	}
	// This node held it last, withdrawn and named again with nobody in
	// between (the lone owner of issue 13, its Lease seen silent under
	// load): writable again.
	out, err = primary.hook(t, "mariadb-promote", "master", "WEBFARM_PREVIOUS_OWNER=", "WEBFARM_LAST_OWNER="+primary.ns.Name)
	t.Logf("mariadb-promote on the last owner, after an epoch without owner: %s", out)
	if err != nil {
		t.Errorf("mariadb-promote on the node that held the address last: %v: %s", err, out)
	}
	expect(primary, true, true, "primary")

	// The address comes back to the node that owned the previous epoch
	// (it fenced itself for a moment): writable again.
	if out, err := primary.hook(t, "mariadb-fence", "fault"); err != nil {
		t.Fatalf("mariadb-fence: %v: %s", err, out)
	}
	out, err = primary.hook(t, "mariadb-promote", "master", "WEBFARM_PREVIOUS_OWNER="+primary.ns.Name)
	if err != nil {
		t.Errorf("mariadb-promote on the previous owner: %v: %s", err, out)
	}
	expect(primary, true, true, "primary")

	// Named after another node, promoted here at this epoch (7), then
	// fenced here: writable again at the same epoch, never at another.
	if out, err := primary.hook(t, "mariadb-fence", "fault"); err != nil {
		t.Fatalf("mariadb-fence: %v: %s", err, out)
	}
	other := []string{"WEBFARM_PREVIOUS_OWNER=" + replica.ns.Name, "WEBFARM_LAST_OWNER=" + replica.ns.Name}
	if out, err := primary.hook(t, "mariadb-promote", "master", append(other, "WEBFARM_PROMOTED_EPOCH=6")...); err == nil {
		t.Errorf("mariadb-promote made writable a server promoted at an earlier epoch: %q", out)
	}
	out, err = primary.hook(t, "mariadb-promote", "master", append(other, "WEBFARM_PROMOTED_EPOCH=7")...)
	t.Logf("mariadb-promote on the owner that fenced itself at the epoch it promoted at: %s", out)
	if err != nil {
		t.Errorf("mariadb-promote on the owner that fenced itself: %v: %s", err, out)
	}
	expect(primary, true, true, "primary")
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestNodeMariaDBPromoteAfterLoss measures mariadb-promote as the agent
// runs it after the hard loss of the primary: a client writes through the
// primary's socket as fast as it is acknowledged (semi-synchronously), the
// primary is lost as the testbed's crash loses it (killed, then its link
// down), and the replica's master hook must apply every acknowledged write
// before it makes the server writable. The hook's time is printed.
func TestNodeMariaDBPromoteAfterLoss(t *testing.T) {
	netnstest.Skip(t)
	if _, err := exec.LookPath("mariadbd"); err != nil {
		t.Skip("mariadbd not installed (hack/install-packages.sh)")
	}
	primary, replica := startPair(t)
	w := startWrites(t, primary)
	if err := w.waitAcked(50); err != nil {
		t.Fatal(err)
	}
	primary.kill()
	primary.ns.MustRun(t, "ip", "link", "set", "dba", "down")
	acked := w.stop()
	start := time.Now()
	out, err := replica.hook(t, "mariadb-promote", "master")
	t.Logf("mariadb-promote after %d acknowledged writes (%s): %s", acked, time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("mariadb-promote: %v: %s", err, out)
	}
	if n := replica.sql(t, "SELECT COUNT(*) FROM trial.writes"); n != strconv.Itoa(acked) && !w.oneMore(n) {
		t.Errorf("the promoted replica has %s rows of the %d acknowledged", n, acked)
	}
	if ro := replica.sql(t, "SELECT @@global.read_only"); ro != "0" {
		t.Errorf("the promoted replica: read_only %s", ro)
	}
	if status := replica.sql(t, "SHOW SLAVE STATUS"); status != "" {
		t.Errorf("the promoted replica still replicates: %s", status)
	}
}

// startPair starts a primary and its semi-synchronous GTID replica, each in
// a namespace of its own, linked as dba (10.77.0.1) and dbb (10.77.0.2).
func startPair(t *testing.T) (primary, replica *server) {
	t.Helper()
	nsA, nsB := netnstest.New(t), netnstest.New(t)
	if err := netnstest.Link(nsA, "dba", "10.77.0.1/24", nsB, "dbb", "10.77.0.2/24"); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []*netnstest.NS{nsA, nsB} {
		ns.MustRun(t, "ip", "link", "set", "lo", "up")
	}
	primary, replica = startServer(t, nsA, 1), startServer(t, nsB, 2)
	primary.sql(t, mariadbtest.Bootstrap(true))
	replica.sql(t, mariadbtest.Replicate("10.77.0.1", true))
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return primary.sql(t, "SHOW STATUS LIKE 'Rpl_semi_sync_master_clients'") == "Rpl_semi_sync_master_clients\t1", nil
	}); err != nil {
		t.Fatalf("the replica never acknowledged semi-synchronously: %v", err)
	}
	return primary, replica
}

// writes inserts numbered rows into a server through its socket, one after
// the other, and counts those acknowledged.
type writes struct {
	acked atomic.Int64
	// inFlight is the row sent last, whose outcome the loss may hide.
	inFlight atomic.Int64
	cancel   func()
	done     chan struct{}
}

func startWrites(t *testing.T, s *server) *writes {
	t.Helper()
	db, err := sql.Open("mysql", "root@unix("+mariadbtest.Socket(s.dir)+")/trial?timeout=5s&readTimeout=15s&writeTimeout=15s")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &writes{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer db.Close()
		for id := int64(1); ctx.Err() == nil; id++ {
			w.inFlight.Store(id)
			if _, err := db.ExecContext(ctx, "INSERT INTO writes (id) VALUES (?)", id); err != nil {
				return
			}
			w.acked.Store(id)
		}
	}()
	t.Cleanup(w.cancelWait)
	return w
}

func (w *writes) cancelWait() { w.cancel(); <-w.done }

func (w *writes) waitAcked(n int64) error {
	return wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return w.acked.Load() >= n, nil
	})
}

// stop stops the writes and returns how many were acknowledged.
func (w *writes) stop() int {
	w.cancelWait()
	return int(w.acked.Load())
}

// oneMore tells whether count is the acknowledged rows and the one in
// flight at the loss: committed and replicated, its answer lost.
func (w *writes) oneMore(count string) bool {
	return count == strconv.FormatInt(w.inFlight.Load(), 10)
}
