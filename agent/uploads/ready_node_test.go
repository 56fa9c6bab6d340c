package uploads

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNodePushStartedAhead: a push started ahead waits, connected, for
// its password and paths (startpush.go). While it waits the peer does not
// count it among the sessions writing into the directory, which the
// peer's local changes would wait for; retired unused, it leaves no
// failure in the peer's log and writes nothing; and one whose snapshot
// vanished before it was used fails rather than deleting every path on
// the peer.
func TestNodePushStartedAhead(t *testing.T) {
	fronts := newTestFarm(t, 2)
	f1, f2 := fronts[0], fronts[1]
	for _, f := range fronts {
		f.start(t, fronts)
	}
	allCaughtUp(t, fronts)
	ctx := testrContext(context.Background(), t, f1.name)
	peer := Peer{Name: f2.name, Addr: f2.addr}
	daemonLog := filepath.Join(f2.state, "rsyncd.log")
	// waitingForPassword starts a push from front1 and waits until
	// front2's daemon let it into the module.
	waitingForPassword := func(t *testing.T) *startedPush {
		t.Helper()
		before := countLines(t, daemonLog, "rsync allowed access")
		p, err := f1.syncer.startPush(ctx, peer)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.close)
		eventually(t, 10*time.Second, "front1's push let into the module", func() bool {
			return countLines(t, daemonLog, "rsync allowed access") > before
		})
		return p
	}

	t.Run("not a session writing on the peer", func(t *testing.T) {
		waitingForPassword(t)
		f2.router.Drain()
		f2.syncer.mu.Lock()
		writing := len(f2.syncer.writing)
		f2.syncer.mu.Unlock()
		if writing != 0 {
			t.Fatalf("front2 counts %d sessions writing while front1's push waits for its password", writing)
		}
	})

	t.Run("retired unused", func(t *testing.T) {
		before := tree(t, f2.dir)
		failures := countLines(t, daemonLog, "auth failed")
		p := waitingForPassword(t)
		p.close()
		if p.err != nil {
			t.Errorf("the retired push ended with %v: %s", p.err, p.stderr.String())
		}
		if n := countLines(t, daemonLog, "auth failed"); n != failures {
			t.Errorf("front2's daemon logged %d more auth failures", n-failures)
		}
		if after := tree(t, f2.dir); !sameTree(before, after) {
			t.Errorf("front2's directory changed: %v, then %v", before, after)
		}
	})

	t.Run("its snapshot vanished", func(t *testing.T) {
		write(t, filepath.Join(f1.dir, "kept.txt"), "on both fronts")
		eventually(t, 10*time.Second, "kept.txt on front2", func() bool {
			_, err := os.Stat(filepath.Join(f2.dir, "kept.txt"))
			return err == nil
		})
		p := waitingForPassword(t)
		if err := os.RemoveAll(p.root); err != nil {
			t.Fatal(err)
		}
		if err := p.send([]string{"kept.txt"}); err == nil {
			t.Error("a push from a vanished snapshot succeeded")
		}
		if _, err := os.Stat(filepath.Join(f2.dir, "kept.txt")); err != nil {
			t.Errorf("front2 lost kept.txt: %v", err)
		}
	})

	t.Run("its connection died while it waited", func(t *testing.T) {
		eventually(t, 10*time.Second, "nothing pending on front1", func() bool { return f1.syncer.Status().Pending == 0 })
		f1.syncer.startAhead(ctx, peer)
		var ready *readyPush
		eventually(t, 10*time.Second, "a push ready towards front2", func() bool {
			f1.syncer.ready.mu.Lock()
			defer f1.syncer.ready.mu.Unlock()
			ready = f1.syncer.ready.byPeer[peer.Name]
			return ready != nil
		})
		eventually(t, 10*time.Second, "front2's daemon let it in", func() bool {
			return strings.Contains(lastLine(t, daemonLog, "rsync allowed access"), f1.addr.String())
		})
		// A restart kills the daemon's connections too.
		f2.daemon.Stop()
		if err := f2.daemon.Apply(f2.daemonConfig(fronts[:1]), testPassword); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "front2's daemon back", func() bool {
			return f1.rsync().Probe(ctx, f1.dir, f2.addr, f2.module().Name) == nil
		})
		if err := f1.syncer.push(ctx, peer, map[string]time.Time{"kept.txt": time.Now()}); err != nil {
			t.Fatalf("the push after front2's restart failed: %v", err)
		}
		if !ready.ended() || ready.err == nil {
			t.Errorf("the push started before the restart was not the one that failed (ended %v, %v)", ready.ended(), ready.err)
		}
	})
}

// lastLine is the last line of file that contains s.
func lastLine(t *testing.T, file, s string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], s) {
			return lines[i]
		}
	}
	return ""
}

// countLines counts the lines of file that contain s.
func countLines(t *testing.T, file, s string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Count(string(data), s)
}
