package uploads

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// startLocalSyncer runs a Syncer without peers on a fresh directory owned
// by the test's own user: no root, no network. setup, when given, shapes
// it before it runs.
func startLocalSyncer(t *testing.T, setup ...func(*Syncer)) *Syncer {
	t.Helper()
	s := &Syncer{
		Module: Module{Name: "m", Path: filepath.Join(t.TempDir(), "media"),
			UID: int64(os.Getuid()), GID: int64(os.Getgid()), FileMode: 0o644, DirMode: 0o755},
		Rsync: &Rsync{Self: "self"},
		Quiet: 20 * time.Millisecond,
	}
	for _, f := range setup {
		f(s)
	}
	ctx, cancel := context.WithCancel(testrContext(context.Background(), t, "self"))
	done := make(chan struct{})
	s.init()
	if err := s.prepare(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, 5*time.Second, "caught up", func() bool { return s.Status().CaughtUp })
	return s
}

// TestSyncerJudgesAReplacementLoggedBeforeItsRename replays what rsync's
// daemon does when a peer's version replaces a file: it logs the transfer
// before it moves the old version into the backup directory and renames
// the new one into place. Judged when the log line was read, the old file
// looked unreplaced and the peer's version stayed, even where it lost.
func TestSyncerJudgesAReplacementLoggedBeforeItsRename(t *testing.T) {
	base := time.Now().Add(time.Minute).Truncate(time.Second)
	for _, tc := range []struct {
		name             string
		kept, incoming   string
		keptAt, incomeAt time.Time
		want             string
	}{
		{name: "older version arrives", kept: "newer here", incoming: "older peer", keptAt: base.Add(time.Second), incomeAt: base, want: "newer here"},
		{name: "same time, smaller digest arrives", kept: tieWinner("tie a", "tie b"), incoming: tieLoser("tie a", "tie b"), keptAt: base, incomeAt: base, want: tieWinner("tie a", "tie b")},
		{name: "newer version arrives", kept: "older here", incoming: "newer peer", keptAt: base, incomeAt: base.Add(time.Second), want: "newer peer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startLocalSyncer(t)
			abs := filepath.Join(s.Module.Path, "race.txt")
			writeAt(t, abs, tc.kept, tc.keptAt)
			eventually(t, 5*time.Second, "the first version settled", func() bool { return s.Status().Pending == 0 })

			peer := netip.MustParseAddr("192.0.2.7")
			s.Received(Transfer{Op: OpRecv, Module: "m", Peer: peer, Path: "race.txt"})
			// The Syncer judges the log line before the daemon's rename
			// lands.
			eventually(t, 5*time.Second, "the transfer judged", func() bool {
				s.mu.Lock()
				defer s.mu.Unlock()
				_, pending := s.pending["race.txt"]
				return len(s.inbox) == 0 && len(s.incoming) == 0 && !pending
			})

			backup := filepath.Join(s.Module.Path, replacedDir, peer.String(), "race.txt")
			if err := os.MkdirAll(filepath.Dir(backup), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(abs, backup); err != nil {
				t.Fatal(err)
			}
			tmp := filepath.Join(s.Module.Path, tmpDir, ".race.txt.XXXXXX")
			writeAt(t, tmp, tc.incoming, tc.incomeAt)
			if err := os.Rename(tmp, abs); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, "the better version in place, the backup gone", func() bool {
				data, err := os.ReadFile(abs)
				_, berr := os.Lstat(backup)
				return err == nil && string(data) == tc.want && os.IsNotExist(berr)
			})
			consistently(t, 10*s.Quiet, func() {
				if data, _ := os.ReadFile(abs); string(data) != tc.want {
					t.Fatalf("race.txt holds %q, want %q", data, tc.want)
				}
			})
		})
	}
}

// TestSyncerKeepsAVersionThatLandsWhileJudging replays a peer's transfer
// whose rename lands while the Syncer weighs the path: judging a tie
// between two 100 MB versions reads both, and the daemon renames files
// into place whenever their transfers end. The verdict, a restore by a
// plain rename or a delete, then destroyed the newer version that landed:
// in TestNodeUploadsThreeFronts a front kept an older 100 MB file for good
// (about one run in eight). Each case takes one way of carrying out a
// verdict: a version set aside put back over the path, or where it was
// absent, and a file taken away for a tombstone.
func TestSyncerKeepsAVersionThatLandsWhileJudging(t *testing.T) {
	base := time.Now().Add(time.Minute).Truncate(time.Second)
	for _, tc := range []struct {
		name string
		// arrive is the first transfer, judged: the peer's version
		// replaces the path (set aside first, as rsync does), or deletes it.
		arrive func(t *testing.T, abs, aside string)
		op     Op
	}{
		{name: "a worse version arrives, the better one is restored", op: OpRecv, arrive: func(t *testing.T, abs, aside string) {
			landIntoTheTree(t, abs, aside, tieLoser("tie a", "tie b"), base)
		}},
		{name: "a deletion arrives, the version it set aside wins", op: OpDel, arrive: func(t *testing.T, abs, aside string) {
			if err := os.Rename(abs, aside); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a version arrives, a newer tombstone beats it", op: OpRecv, arrive: func(t *testing.T, abs, aside string) {
			tomb := filepath.Join(filepath.Dir(abs), tombstoneName(filepath.Base(abs)))
			writeAt(t, tomb, "peer\n", base.Add(time.Second))
			landIntoTheTree(t, abs, aside, tieLoser("tie a", "tie b"), base)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var armed atomic.Bool
			var abs string
			peer := netip.MustParseAddr("192.0.2.7")
			newest := "newest, landed while judged"
			s := startLocalSyncer(t, func(s *Syncer) {
				s.beforeVerdict = func(path string) {
					if path == "race.txt" && armed.CompareAndSwap(true, false) {
						landIntoTheTree(t, abs, filepath.Join(s.Module.Path, replacedDir, peer.String(), "race.txt.~2~"), newest, base.Add(time.Hour))
					}
				}
			})
			abs = filepath.Join(s.Module.Path, "race.txt")
			writeAt(t, abs, tieWinner("tie a", "tie b"), base)
			eventually(t, 5*time.Second, "the first version settled", func() bool { return s.Status().Pending == 0 })

			aside := filepath.Join(s.Module.Path, replacedDir, peer.String(), "race.txt.~1~")
			if err := os.MkdirAll(filepath.Dir(aside), 0o755); err != nil {
				t.Fatal(err)
			}
			tc.arrive(t, abs, aside)
			armed.Store(true)
			s.Received(Transfer{Op: tc.op, Module: "m", Peer: peer, Path: "race.txt"})
			eventually(t, 5*time.Second, "the newest version in place, nothing left aside", func() bool {
				data, err := os.ReadFile(abs)
				left, _ := os.ReadDir(filepath.Dir(aside))
				return err == nil && string(data) == newest && len(left) == 0
			})
			if armed.Load() {
				t.Fatal("no verdict was reached: the test replayed nothing")
			}
			consistently(t, 10*s.Quiet, func() {
				if data, _ := os.ReadFile(abs); string(data) != newest {
					t.Fatalf("race.txt holds %q, want %q", data, newest)
				}
			})
		})
	}
}

// TestSyncerKeepsAWriteInPlaceThatATransferSetAside replays a write in
// place under way as a peer's older version lands: rsync's daemon
// hard-links the file being written aside and renames its version over
// the name, and inotify reports the writer's later writes and its close
// under that name. The path looked written in place over the peer's
// version, and the versions set aside, the writer's among them, were
// removed: the newest write of the path was lost on every front
// (TestNodeUploadsRandomTrial, about one run in twenty). Judged, the
// writer's version waits for its writer: put back while written, it went
// out half written.
func TestSyncerKeepsAWriteInPlaceThatATransferSetAside(t *testing.T) {
	s := startLocalSyncer(t)
	abs := filepath.Join(s.Module.Path, "race.txt")
	writeAt(t, abs, "first version", time.Now().Add(-time.Hour))
	eventually(t, 5*time.Second, "the first version settled", func() bool { return s.Status().Pending == 0 })

	writer, err := os.OpenFile(abs, os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	if _, err := writer.WriteString("written here, "); err != nil {
		t.Fatal(err)
	}
	peer := netip.MustParseAddr("192.0.2.7")
	aside := filepath.Join(s.Module.Path, replacedDir, peer.String(), "race.txt.~1~")
	if err := os.MkdirAll(filepath.Dir(aside), 0o755); err != nil {
		t.Fatal(err)
	}
	landIntoTheTree(t, abs, aside, "the peer's older version", time.Now().Add(-time.Minute))
	s.Received(Transfer{Op: OpRecv, Module: "m", Peer: peer, Path: "race.txt"})
	if _, err := writer.WriteString("the newest "); err != nil {
		t.Fatal(err)
	}
	// The writer's version is newer than the peer's, but not whole yet:
	// put back now, it would be sent half written.
	consistently(t, 10*s.Quiet, func() {
		if data, _ := os.ReadFile(abs); string(data) != "the peer's older version" {
			t.Fatalf("race.txt holds %q while its writer writes it aside, want the peer's version until it is done", data)
		}
	})
	if _, err := writer.WriteString("version"); err != nil {
		t.Fatal(err)
	}
	if err := writer.Close(); err != nil {
		t.Fatal(err)
	}
	want := "written here, the newest version"
	eventually(t, 5*time.Second, "the writer's version in place, nothing left aside", func() bool {
		data, err := os.ReadFile(abs)
		left, _ := os.ReadDir(filepath.Dir(aside))
		return err == nil && string(data) == want && len(left) == 0
	})
	consistently(t, 10*s.Quiet, func() {
		if data, _ := os.ReadFile(abs); string(data) != want {
			t.Fatalf("race.txt holds %q, want %q", data, want)
		}
	})
}

// TestKeptSlotDirsOwnedByTheModule: the directories the agent makes among
// the versions set aside belong to the module's owner, as whom the daemon
// sets versions aside there; made by root with mode 0700, they failed
// every later push of a file in them (rsync's exit code 23).
func TestKeptSlotDirsOwnedByTheModule(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the directories away")
	}
	s := &Syncer{Module: Module{Path: t.TempDir(), UID: 65534, GID: 65534, DirMode: 0o755, FileMode: 0o644}}
	slot, err := s.keptSlot("peer", "a/b/f.jpg")
	if err != nil {
		t.Fatal(err)
	}
	for dir := filepath.Dir(slot); dir != s.Module.Path; dir = filepath.Dir(dir) {
		st, err := os.Lstat(dir)
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if sys.Uid != 65534 || sys.Gid != 65534 || st.Mode().Perm() != 0o755 {
			t.Errorf("%s: owner %d:%d, mode %v; want 65534:65534, 0755", dir, sys.Uid, sys.Gid, st.Mode().Perm())
		}
	}
}

// landIntoTheTree replays a transfer of content at mtime to abs as rsync's
// daemon writes a push from a peer from before staging: the version
// there, if any, hard-linked aside first, then the new one renamed into
// place from the temporary directory.
func landIntoTheTree(t *testing.T, abs, aside, content string, mtime time.Time) {
	t.Helper()
	if err := os.Link(abs, aside); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(abs), tmpDir, "."+filepath.Base(abs)+".XXXXXX")
	writeAt(t, tmp, content, mtime)
	if err := os.Rename(tmp, abs); err != nil {
		t.Fatal(err)
	}
}

func tieWinner(a, b string) string {
	if fullDigest(b) > fullDigest(a) {
		return b
	}
	return a
}

func tieLoser(a, b string) string {
	if tieWinner(a, b) == a {
		return b
	}
	return a
}

// TestSyncerSendsATimeSetAfterTheContent: an upload whose time is set
// after its content settled (write, then utimes, as tar or curl -R do)
// is queued again with that time: the rule compares times, and a time
// change alone raises only an attribute event.
func TestSyncerSendsATimeSetAfterTheContent(t *testing.T) {
	s := startSyncerWithDeadPeer(t)
	abs := filepath.Join(s.Module.Path, "upload.bin")
	write(t, abs, "content first")
	queuedAs := func() stamp {
		as, _ := s.queuedAs("upload.bin")
		return as
	}
	eventually(t, 5*time.Second, "the content queued", func() bool { return queuedAs().size > 0 })
	later := time.Now().Add(time.Hour).Truncate(time.Second)
	if err := os.Chtimes(abs, later, later); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the new time queued", func() bool { return queuedAs().mtimeNs == later.UnixNano() })
}

// startSyncerWithDeadPeer runs a local Syncer whose one peer is a closed
// port on loopback: every push fails, and what settled stays queued, to
// be read with queuedAs.
func startSyncerWithDeadPeer(t *testing.T) *Syncer {
	t.Helper()
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync is not installed")
	}
	port := closedPort(t)
	password := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(password, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return startLocalSyncer(t, func(s *Syncer) {
		s.Rsync.Port, s.Rsync.Timeout, s.Rsync.PasswordFile = port, time.Second, password
		s.SetPeers([]Peer{{Name: "peer", Addr: netip.MustParseAddr("127.0.0.1")}})
	})
}

// queuedAs is path as it settled, if it is queued for a peer.
func (s *Syncer) queuedAs(path string) (stamp, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	as, ok := s.settledAs[path]
	return as, ok
}

// TestSyncerWaitsForAWriteToEnd: a file still open for writing is not
// sent, however long its writer pauses, until its writer closes it; a
// symlink, whole once made, is sent after the quiet period. An upload
// written in two halves 500 ms apart reached the peers half written,
// where readers saw it (as through lsyncd).
func TestSyncerWaitsForAWriteToEnd(t *testing.T) {
	s := startSyncerWithDeadPeer(t)
	queuedAs := s.queuedAs
	f, err := os.Create(filepath.Join(s.Module.Path, "slow.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("first half, "); err != nil {
		t.Fatal(err)
	}
	consistently(t, 10*s.Quiet, func() {
		if as, ok := queuedAs("slow.bin"); ok {
			t.Fatalf("slow.bin queued while still open for writing, as %+v", as)
		}
	})
	if _, err := f.WriteString("second half"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the whole file queued", func() bool {
		as, ok := queuedAs("slow.bin")
		return ok && as.size == int64(len("first half, second half"))
	})
	if err := os.Symlink("slow.bin", filepath.Join(s.Module.Path, "link")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*s.Quiet, "the symlink queued", func() bool {
		_, ok := queuedAs("link")
		return ok
	})
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// TestSyncerPushesDoNotWaitForASlowPeer: a peer whose push hangs holds up
// neither the pushes to the other peer nor the settling of new changes,
// and is never sent two pushes at once: what settles meanwhile goes to it
// in its next push, right after the one under way.
func TestSyncerPushesDoNotWaitForASlowPeer(t *testing.T) {
	const slow, fast = "192.0.2.1", "192.0.2.2"
	rsync := newFakeRsync(t, slow)
	s := startLocalSyncer(t, func(s *Syncer) {
		rsync.install(t, s)
		s.SetPeers([]Peer{{Name: "slow", Addr: netip.MustParseAddr(slow)}, {Name: "fast", Addr: netip.MustParseAddr(fast)}})
	})
	count := func(to string) int {
		n, _ := rsync.pushes(to)
		return n
	}

	write(t, filepath.Join(s.Module.Path, "first.txt"), "first")
	eventually(t, 5*time.Second, "first.txt pushed to both peers", func() bool { return count(slow) == 1 && count(fast) == 1 })
	write(t, filepath.Join(s.Module.Path, "second.txt"), "second")
	eventually(t, 5*time.Second, "second.txt pushed to the fast peer while the slow one hangs", func() bool { return count(fast) == 2 })
	if n := count(slow); n != 1 {
		t.Fatalf("the slow peer got %d pushes while its first hung, want 1", n)
	}
	if st := s.Status(); st.Pending != 2 {
		t.Errorf("pending %d while the slow peer lacks both files, want 2", st.Pending)
	}
	rsync.release(t)
	eventually(t, 5*time.Second, "second.txt pushed to the slow peer next", func() bool { return count(slow) == 2 })
	rsync.release(t)
	eventually(t, 5*time.Second, "nothing pending", func() bool { return s.Status().Pending == 0 })
	if _, most := rsync.pushes(slow); most != 1 {
		t.Errorf("the slow peer had %d pushes under way at once, want 1", most)
	}
}

// TestSyncerDoesNotWaitForAProbe: the peers are asked whether this front
// is still one of theirs beside the loop. Asked in it, a peer that did not
// answer held every local change for --contimeout (5 s) per peer, and
// again every probeRetries seconds while it stayed away.
func TestSyncerDoesNotWaitForAProbe(t *testing.T) {
	rsync := newFakeRsync(t, "")
	rsync.probesHang = true
	s := startLocalSyncer(t, func(s *Syncer) {
		rsync.install(t, s)
		s.SetPeers([]Peer{{Name: "away", Addr: netip.MustParseAddr("192.0.2.9")}})
	})
	// The first probe starts with the first step after the catch-up.
	eventually(t, 5*time.Second, "a probe under way", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.probing
	})
	write(t, filepath.Join(s.Module.Path, "up.jpg"), "uploaded while the peer is asked")
	eventually(t, 2*time.Second, "up.jpg pushed while the probe hangs", func() bool {
		n, _ := rsync.pushes("192.0.2.9")
		return n > 0
	})
}

// TestSyncerWaitsForTheSessionsWriting: rsync's daemon logs a received
// file when its generator next reads the receiver's messages, often after
// the file is in place and has settled. A path that settles while a
// session writes into the directory waits for that session: logged, it
// is the peer's and not sent; not logged by the session's end, or within
// maxWait quiet periods, it is this front's. A session begun later does
// not hold it.
func TestSyncerWaitsForTheSessionsWriting(t *testing.T) {
	const writer, later = 4711, 4712
	for _, tc := range []struct {
		name string
		// then is what the daemon's log says once the path waits.
		then      func(s *Syncer)
		wantLocal bool
	}{
		{"logged after it settled: the peer's", func(s *Syncer) {
			s.Received(Transfer{Op: OpRecv, Module: "m", Peer: netip.MustParseAddr("192.0.2.7"), Path: "up.jpg"})
			s.receiving(nil, nil)
		}, false},
		{"the session ended without naming it: this front's", func(s *Syncer) { s.receiving(nil, nil) }, true},
		{"a session begun since does not hold it", func(s *Syncer) { s.receiving([]int{later}, nil) }, true},
		{"the session goes on past the longest wait: this front's", func(s *Syncer) {}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rsync := newFakeRsync(t, "")
			s := startLocalSyncer(t, func(s *Syncer) {
				rsync.install(t, s)
				s.SetPeers([]Peer{{Name: "peer", Addr: netip.MustParseAddr("192.0.2.7")}})
			})
			s.receiving([]int{writer}, nil)
			// As rsync's daemon writes: aside (--temp-dir), then renamed
			// into place.
			aside := filepath.Join(s.Module.Path, tmpDir, "up.jpg")
			write(t, aside, "from a peer, or from here")
			if err := os.Rename(aside, filepath.Join(s.Module.Path, "up.jpg")); err != nil {
				t.Fatal(err)
			}
			waits := func() bool {
				s.mu.Lock()
				defer s.mu.Unlock()
				_, ok := s.waiting["up.jpg"]
				return ok
			}
			eventually(t, 5*time.Second, "up.jpg waiting for the session", waits)
			consistently(t, 10*s.Quiet, func() {
				if !waits() {
					t.Fatal("up.jpg left its wait while the session goes on")
				}
			})
			tc.then(s)
			s.poke()
			eventually(t, 5*time.Second, "up.jpg settled", func() bool { return !waits() && s.Status().Pending == 0 })
			if pushed, _ := rsync.pushes("192.0.2.7"); (pushed > 0) != tc.wantLocal {
				t.Errorf("up.jpg pushed %d times, want it sent: %v", pushed, tc.wantLocal)
			}
		})
	}
}

// TestSyncerDoesNotHoldAFileWrittenHere: a file written into its own
// name while a peer's session writes into the directory is this front's
// (the daemon writes aside and renames into place): it is pushed without
// waiting for the session to end. Held, uploads at 20/s on two fronts
// each waited for the other's pushes, whose end rsync's daemon logs 20-50
// ms after their last file.
func TestSyncerDoesNotHoldAFileWrittenHere(t *testing.T) {
	const writer = 4711
	rsync := newFakeRsync(t, "")
	s := startLocalSyncer(t, func(s *Syncer) {
		rsync.install(t, s)
		s.SetPeers([]Peer{{Name: "peer", Addr: netip.MustParseAddr("192.0.2.7")}})
	})
	s.receiving([]int{writer}, nil)
	write(t, filepath.Join(s.Module.Path, "up.jpg"), "written here")
	held := false
	eventually(t, 5*time.Second, "up.jpg pushed", func() bool {
		s.mu.Lock()
		_, waits := s.waiting["up.jpg"]
		s.mu.Unlock()
		held = held || waits
		pushed, _ := rsync.pushes("192.0.2.7")
		return pushed > 0
	})
	if held {
		t.Error("up.jpg, written here, waited for the peer's session")
	}
}

// TestSyncerKeepsUpWithABurst: 20,000 files written at once, each given
// its mode by the Syncer (two more events), lose no inotify event. Read
// only between steps, the events overflowed the kernel's queue while a
// step settled the first thousands, and each overflow cost a catch-up.
func TestSyncerKeepsUpWithABurst(t *testing.T) {
	s := startLocalSyncer(t)
	for i := range 20000 {
		write(t, filepath.Join(s.Module.Path, "burst", fmt.Sprintf("%05d.txt", i)), "small")
	}
	eventually(t, time.Minute, "the burst settled", func() bool { return s.Status().Pending == 0 })
	if n := s.Status().LostEvents; n != 0 {
		t.Errorf("inotify lost events %d times", n)
	}
}

// TestSyncerUnlinksWhatItPushed: once a push ended, its snapshot holds
// none of its files, which would keep a file deleted here on the disk.
func TestSyncerUnlinksWhatItPushed(t *testing.T) {
	rsync := newFakeRsync(t, "")
	s := startLocalSyncer(t, func(s *Syncer) {
		rsync.install(t, s)
		s.SetPeers([]Peer{{Name: "peer", Addr: netip.MustParseAddr("192.0.2.7")}})
	})
	for i := range 5 {
		write(t, filepath.Join(s.Module.Path, "2026/12", fmt.Sprintf("up%d.jpg", i)), "written here")
		eventually(t, 5*time.Second, "the upload pushed", func() bool {
			pushed, _ := rsync.pushes("192.0.2.7")
			return pushed > i
		})
	}
	snapshots := filepath.Join(s.Module.Path, pushDir)
	eventually(t, 5*time.Second, "the pushed files unlinked from the snapshots", func() bool {
		for p, kind := range tree(t, snapshots) {
			if kind != "dir" {
				t.Logf("%s is still in the snapshots", p)
				return false
			}
		}
		return true
	})
}

// TestSyncerRenewsItsEmptyMaps: a map keeps the room it once needed, so
// an empty one is replaced; one that holds paths is kept as it is.
func TestSyncerRenewsItsEmptyMaps(t *testing.T) {
	s := &Syncer{}
	s.init()
	now := time.Now()
	for i := range 1000 {
		s.pending.touch(fmt.Sprintf("found/%d", i), now, true)
	}
	s.settledAs["up.jpg"] = stamp{mtimeNs: 1, size: 2}
	emptied, kept := reflect.ValueOf(s.pending).UnsafePointer(), reflect.ValueOf(s.settledAs).UnsafePointer()
	for p := range s.pending {
		delete(s.pending, p)
	}
	s.renewEmptyMaps()
	if reflect.ValueOf(s.pending).UnsafePointer() == emptied {
		t.Error("pending, emptied, is still the map that held 1,000 paths")
	}
	if reflect.ValueOf(s.settledAs).UnsafePointer() != kept || s.settledAs["up.jpg"] != (stamp{mtimeNs: 1, size: 2}) {
		t.Errorf("settledAs, holding a path, was replaced or lost it: %v", s.settledAs)
	}
}
