package uploads

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"

	"github.com/webfarm/webfarm/internal/netnstest"
)

// Test owner of the synced directories: no account needed, rsyncd takes
// numeric ids.
const testUID, testGID = 4242, 4343

const testPassword = "farm-secret-0123456789"

// testFront is one front: a namespace on the farm's bridge, its directory,
// its rsync daemon and its Syncer.
type testFront struct {
	name  string
	ns    *netnstest.NS
	addr  netip.Addr
	dir   string
	state string

	// ttl, when set, is the Syncer's TombstoneTTL, with a skew of a
	// tenth of it.
	ttl time.Duration
	// quiet, when set, is the Syncer's Quiet.
	quiet time.Duration
	// extra are more modules of its daemon, no Syncer's (the bench's
	// lsyncd targets).
	extra []Module

	daemon *Daemon
	router *Router
	syncer *Syncer
	cancel context.CancelFunc
	done   chan struct{}
	// stopFollowing ends the router's following of the daemon's log.
	stopFollowing func()
}

// runner runs programs inside ns's network namespace: nsenter, not `ip
// netns exec`, which also remounts /sys at every rsync it starts.
func runner(ns *netnstest.NS) Runner {
	return func(ctx context.Context, name string, args ...string) *exec.Cmd {
		return exec.CommandContext(ctx, "nsenter", append([]string{"--net=/run/netns/" + ns.Name, "--", name}, args...)...)
	}
}

// startIn starts a command from a thread inside ns's network namespace:
// the child is born there, with no nsenter in between, as an agent's
// rsync is on its node.
func startIn(ns *netnstest.NS) func(*exec.Cmd) error {
	return func(cmd *exec.Cmd) error { return ns.Do(cmd.Start) }
}

// newTestFarm makes n fronts on one bridge (in a namespace of its own),
// 10.98.0.1 and up, each with its daemon and directory; nothing runs yet.
func newTestFarm(t *testing.T, n int) []*testFront {
	t.Helper()
	hub := netnstest.New(t)
	hub.MustRun(t, "ip", "link", "add", "br0", "type", "bridge")
	hub.MustRun(t, "ip", "link", "set", "br0", "up")
	base := t.TempDir()
	var fronts []*testFront
	for i := 1; i <= n; i++ {
		f := &testFront{
			name: fmt.Sprintf("front%d", i), ns: netnstest.New(t),
			addr: netip.AddrFrom4([4]byte{10, 98, 0, byte(i)}),
		}
		f.dir = filepath.Join(base, f.name, "media")
		f.state = filepath.Join(base, f.name, "state")
		host, port := fmt.Sprintf("wfu%d", i), fmt.Sprintf("wfub%d", i)
		for _, step := range [][]string{
			{"link", "add", host, "type", "veth", "peer", "name", port},
			{"link", "set", host, "netns", f.ns.Name, "name", "eth0"},
			{"link", "set", port, "netns", hub.Name},
		} {
			if out, err := exec.Command("ip", step...).CombinedOutput(); err != nil {
				t.Fatalf("ip %v: %v: %s", step, err, out)
			}
		}
		hub.MustRun(t, "ip", "link", "set", port, "master", "br0", "up")
		f.ns.MustRun(t, "ip", "addr", "add", f.addr.String()+"/24", "dev", "eth0")
		f.ns.MustRun(t, "ip", "link", "set", "eth0", "up")
		if err := os.MkdirAll(f.state, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(f.state, "password"), []byte(testPassword+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		fronts = append(fronts, f)
	}
	return fronts
}

func (f *testFront) module() Module {
	return Module{Name: "default.www.media", Path: f.dir, UID: testUID, GID: testGID, FileMode: 0o644, DirMode: 0o755}
}

func (f *testFront) daemonConfig(peers []*testFront) DaemonConfig {
	cfg := DaemonConfig{Address: f.addr, Port: 8873, StateDir: f.state, Modules: append([]Module{f.module()}, f.extra...)}
	for _, p := range peers {
		cfg.Peers = append(cfg.Peers, p.addr)
	}
	return cfg
}

func (f *testFront) rsync() *Rsync {
	return &Rsync{Start: startIn(f.ns), Self: f.name, PasswordFile: filepath.Join(f.state, "password"), Port: 8873, Timeout: 30 * time.Second}
}

// start runs the front's daemon and Syncer until stop or the test's end.
func (f *testFront) start(t *testing.T, all []*testFront) {
	t.Helper()
	f.serve(t, all)
	f.run(t)
}

// serve starts the front's daemon, and makes its Syncer, not yet run.
func (f *testFront) serve(t *testing.T, all []*testFront) {
	t.Helper()
	var peers []*testFront
	var ps []Peer
	for _, p := range all {
		if p != f {
			peers = append(peers, p)
			ps = append(ps, Peer{Name: p.name, Addr: p.addr})
		}
	}
	cfg := f.daemonConfig(peers)
	f.daemon = &Daemon{Command: runner(f.ns)}
	f.router = NewRouter(cfg)
	f.syncer = &Syncer{Module: f.module(), Rsync: f.rsync(), Drain: f.router.Drain,
		TombstoneTTL: f.ttl, ClockSkew: f.ttl / 10, Quiet: f.quiet}
	f.router.Set(f.module().Name, f.syncer)
	f.syncer.SetPeers(ps)
	if err := f.syncer.prepare(); err != nil {
		t.Fatal(err)
	}
	if err := f.daemon.Apply(cfg, testPassword); err != nil {
		t.Fatal(err)
	}
}

// run runs the Syncer serve made, its router following the daemon's log
// as the Manager's does, until stop or the test's end.
func (f *testFront) run(t *testing.T) {
	t.Helper()
	stopFollowing, err := f.router.Follow()
	if err != nil {
		t.Fatal(err)
	}
	f.stopFollowing = stopFollowing
	ctx, cancel := context.WithCancel(context.Background())
	ctx = testrContext(ctx, t, f.name)
	f.cancel, f.done = cancel, make(chan struct{})
	go func() {
		defer close(f.done)
		if err := f.syncer.Run(ctx); err != nil {
			t.Errorf("%s: %v", f.name, err)
		}
	}()
	t.Cleanup(f.stop)
}

// stop stops the front's Syncer and daemon, as a front that goes down.
func (f *testFront) stop() {
	if f.cancel == nil {
		return
	}
	f.stopFollowing()
	f.cancel()
	<-f.done
	f.daemon.Stop()
	f.cancel = nil
}

func testrContext(ctx context.Context, t *testing.T, name string) context.Context {
	return logr.NewContext(ctx, testr.NewWithOptions(t, testr.Options{Verbosity: 0}).WithValues("front", name))
}

// tree is every synced path of dir with a digest of its content (or its
// link's target), the agent's own directory left out.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == MetaDir {
			return filepath.SkipDir
		}
		switch {
		case rel == ".":
		case d.IsDir():
			out[rel] = "dir"
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			out[rel] = "link " + target
		default:
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			out[rel] = hex.EncodeToString(sum[:8])
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

func sameTree(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	d := eventuallyQuiet(t, within, cond)
	if d < 0 {
		t.Fatalf("after %v: %s", within, what)
	}
	return d
}

// converged waits until every front holds want (nil: the same as the
// first front) and returns how long that took.
func converged(t *testing.T, fronts []*testFront, want map[string]string, what string) time.Duration {
	t.Helper()
	var last []map[string]string
	d := eventuallyQuiet(t, 20*time.Second, func() bool {
		last = last[:0]
		ref := want
		for _, f := range fronts {
			got := tree(t, f.dir)
			last = append(last, got)
			if ref == nil {
				ref = got
			}
			if !sameTree(ref, got) {
				return false
			}
		}
		return true
	})
	if d < 0 {
		t.Fatalf("%s: the fronts did not converge:\n%s", what, dumpTrees(fronts, last))
	}
	t.Logf("%s: converged on every front in %v", what, d.Round(time.Millisecond))
	return d
}

func eventuallyQuiet(t *testing.T, within time.Duration, cond func() bool) time.Duration {
	t.Helper()
	return pollUntil(within, 20*time.Millisecond, cond)
}

// pollUntil checks cond every period until it holds, and returns how long
// that took, or -1 after within.
func pollUntil(within, period time.Duration, cond func() bool) time.Duration {
	start := time.Now()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for !cond() {
		if time.Since(start) > within {
			return -1
		}
		<-tick.C
	}
	return time.Since(start)
}

func dumpTrees(fronts []*testFront, trees []map[string]string) string {
	var b strings.Builder
	for i, tr := range trees {
		fmt.Fprintf(&b, "%s: %v\n", fronts[i].name, tr)
	}
	return b.String()
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// daemonReceived is the bytes the front's daemon received in its last
// session, from its log's summary line.
func daemonReceived(t *testing.T, f *testFront) int64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.state, "rsyncd.log"))
	if err != nil {
		t.Fatal(err)
	}
	var last int64 = -1
	for _, line := range bytes.Split(data, []byte("\n")) {
		var sent, received int64
		i := bytes.Index(line, []byte("] sent "))
		if i < 0 {
			continue
		}
		if _, err := fmt.Sscanf(string(line[i+2:]), "sent %d bytes  received %d bytes", &sent, &received); err == nil {
			last = received
		}
	}
	return last
}

// consistently checks check every 20 ms for d.
func consistently(t *testing.T, d time.Duration, check func()) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(d); time.Now().Before(end); <-tick.C {
		check()
	}
}

func fullDigest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
