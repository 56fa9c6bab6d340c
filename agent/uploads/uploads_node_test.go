package uploads

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNodeUploadsThreeFronts: three fronts in namespaces of their own on
// one bridge, each with Debian's rsync as daemon and client, keep one
// directory identical: create, modify, nested directories, rename,
// delete, permissions, concurrent writes, and no bounce.
func TestNodeUploadsThreeFronts(t *testing.T) {
	fronts := newTestFarm(t, 3)
	for _, f := range fronts {
		f.start(t, fronts)
	}
	f1, f2, f3 := fronts[0], fronts[1], fronts[2]
	allCaughtUp(t, fronts)
	// The first fronts caught up while the others' daemons were not up
	// yet: once all are, no error is left.
	noErrors(t, fronts)

	t.Run("create", func(t *testing.T) {
		write(t, filepath.Join(f1.dir, "a.pdf"), "first upload")
		converged(t, fronts, map[string]string{"a.pdf": digest("first upload")}, "create")
	})
	t.Run("no bounce", func(t *testing.T) {
		pushed2, pushed3 := f2.syncer.Status().Pushed, f3.syncer.Status().Pushed
		write(t, filepath.Join(f1.dir, "b.jpg"), "second upload")
		converged(t, fronts, nil, "no bounce")
		// The receivers' watchers have seen the writes by now; give
		// them a few quiet periods to (wrongly) send them back.
		consistently(t, 10*DefaultQuiet, func() {
			if f2.syncer.Status().Pushed != pushed2 || f3.syncer.Status().Pushed != pushed3 {
				t.Fatalf("a received file was sent back: front2 pushed %d, front3 %d (before %d, %d)",
					f2.syncer.Status().Pushed, f3.syncer.Status().Pushed, pushed2, pushed3)
			}
		})
	})
	t.Run("modify", func(t *testing.T) {
		write(t, filepath.Join(f2.dir, "a.pdf"), "first upload, edited on front2")
		converged(t, fronts, nil, "modify")
		if got := tree(t, f3.dir)["a.pdf"]; got != digest("first upload, edited on front2") {
			t.Fatalf("front3 holds %s", got)
		}
	})
	t.Run("nested directories", func(t *testing.T) {
		write(t, filepath.Join(f3.dir, "2026/12/01/photo.png"), "nested")
		converged(t, fronts, nil, "nested")
		if _, ok := tree(t, f1.dir)["2026/12/01/photo.png"]; !ok {
			t.Fatal("the nested file did not reach front1")
		}
	})
	t.Run("rename", func(t *testing.T) {
		if err := os.Rename(filepath.Join(f1.dir, "b.jpg"), filepath.Join(f1.dir, "2026/b-renamed.jpg")); err != nil {
			t.Fatal(err)
		}
		converged(t, fronts, nil, "rename")
		tr := tree(t, f2.dir)
		if _, old := tr["b.jpg"]; old || tr["2026/b-renamed.jpg"] != digest("second upload") {
			t.Fatalf("front2 after the rename: %v", tr)
		}
	})
	t.Run("directory moved in", func(t *testing.T) {
		outside := filepath.Join(t.TempDir(), "album")
		write(t, filepath.Join(outside, "one.jpg"), "one")
		write(t, filepath.Join(outside, "sub", "two.jpg"), "two")
		if err := os.Rename(outside, filepath.Join(f2.dir, "album")); err != nil {
			t.Skipf("the temporary directory is on another filesystem: %v", err)
		}
		converged(t, fronts, nil, "directory moved in")
		if tree(t, f3.dir)["album/sub/two.jpg"] != digest("two") {
			t.Fatal("the moved-in tree did not reach front3")
		}
	})
	t.Run("delete", func(t *testing.T) {
		if err := os.Remove(filepath.Join(f3.dir, "a.pdf")); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(f3.dir, "2026/12")); err != nil {
			t.Fatal(err)
		}
		converged(t, fronts, nil, "delete")
		tr := tree(t, f1.dir)
		if _, ok := tr["a.pdf"]; ok {
			t.Fatal("a.pdf survived its deletion on front1")
		}
		if _, ok := tr["2026/12/01/photo.png"]; ok {
			t.Fatal("the deleted directory's file survived on front1")
		}
	})
	t.Run("permissions", func(t *testing.T) {
		write(t, filepath.Join(f1.dir, "perm/private.txt"), "mode 0600 here")
		converged(t, fronts, nil, "permissions")
		// The file goes at once, written here; its new directory may
		// be a peer's, and settles, given its owner, once the sessions
		// writing into front1 then have ended (mayBeLocal).
		var wrong []string
		if pollUntil(10*time.Second, 20*time.Millisecond, func() bool {
			wrong = nil
			for _, f := range fronts {
				for _, p := range []string{"perm/private.txt", "perm"} {
					st, err := os.Lstat(filepath.Join(f.dir, p))
					if err != nil {
						t.Fatal(err)
					}
					want := os.FileMode(0o644)
					if st.IsDir() {
						want = 0o755
					}
					sys := st.Sys().(*syscall.Stat_t)
					if st.Mode().Perm() != want || sys.Uid != testUID || sys.Gid != testGID {
						wrong = append(wrong, fmt.Sprintf("%s %s: mode %v owner %d:%d, want %v %d:%d", f.name, p, st.Mode().Perm(), sys.Uid, sys.Gid, want, testUID, testGID))
					}
				}
			}
			return len(wrong) == 0
		}) < 0 {
			t.Errorf("after 10s: %s", strings.Join(wrong, "; "))
		}
	})
	t.Run("concurrent writes", func(t *testing.T) {
		base := time.Now().Add(time.Minute).Truncate(time.Second)
		// Different times: front1's version is newer and wins. Same
		// time: the content with the greater SHA-256 wins, wherever it
		// was written.
		writeAt(t, filepath.Join(f1.dir, "race-newer.txt"), "front1 newer", base.Add(300*time.Millisecond))
		writeAt(t, filepath.Join(f2.dir, "race-newer.txt"), "front2 older", base.Add(100*time.Millisecond))
		writeAt(t, filepath.Join(f1.dir, "race-tie.txt"), "front1 tie", base)
		writeAt(t, filepath.Join(f2.dir, "race-tie.txt"), "front2 tie", base)
		tieWinner := "front1 tie"
		if fullDigest("front2 tie") > fullDigest("front1 tie") {
			tieWinner = "front2 tie"
		}
		// Every front may hold a loser for a moment, until it judges
		// what replaced it: wait for the rule's outcome everywhere.
		d := eventuallyQuiet(t, 20*time.Second, func() bool {
			for _, f := range fronts {
				tr := tree(t, f.dir)
				if tr["race-newer.txt"] != digest("front1 newer") || tr["race-tie.txt"] != digest(tieWinner) {
					return false
				}
			}
			return true
		})
		if d < 0 {
			for _, f := range fronts {
				tr := tree(t, f.dir)
				t.Logf("%s: race-newer %s race-tie %s", f.name, tr["race-newer.txt"], tr["race-tie.txt"])
			}
			t.Fatalf("not every front on the winning versions: race-newer %s, race-tie %s", digest("front1 newer"), digest(tieWinner))
		}
		t.Logf("concurrent writes: every front on the winning versions in %v", d.Round(time.Millisecond))
		converged(t, fronts, nil, "concurrent writes")
		// A push that read the loser before the winner landed on its
		// sender may still land: the receiver judges it a quiet period
		// later. Once no front has anything left to send, nothing may
		// move the winner again.
		idle(t, fronts)
		consistently(t, 10*DefaultQuiet, func() {
			if got := tree(t, f3.dir)["race-tie.txt"]; got != digest(tieWinner) {
				t.Fatalf("front3 left the winning version of race-tie.txt for %s", got)
			}
		})
		t.Logf("conflicts counted: front1 %d, front2 %d, front3 %d",
			f1.syncer.Status().Conflicts, f2.syncer.Status().Conflicts, f3.syncer.Status().Conflicts)
	})
	t.Run("large file, delta transfer", func(t *testing.T) {
		big := make([]byte, 100<<20)
		if _, err := rand.Read(big); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(f1.dir, "video.bin")
		start := time.Now()
		if err := os.WriteFile(path, big, 0o644); err != nil {
			t.Fatal(err)
		}
		converged(t, fronts, nil, "100 MB file")
		t.Logf("100 MB file on every front %v after its write began", time.Since(start).Round(time.Millisecond))
		// One byte changed in the middle: rsync's delta sends a few
		// blocks, not the file.
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte{^big[50<<20]}, 50<<20); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		converged(t, fronts, nil, "100 MB file, one byte changed")
		for _, peer := range []*testFront{f2, f3} {
			got := daemonReceived(t, peer)
			t.Logf("%s's daemon received %d bytes for the one-byte change of a 100 MB file", peer.name, got)
			if got < 0 || got > 10<<20 {
				t.Errorf("%s received %d bytes: no delta transfer", peer.name, got)
			}
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		converged(t, fronts, nil, "100 MB file deleted")
	})
}

func writeAt(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	write(t, path, content)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// TestNodeUploadsFrontDownCatchesUp: a front down while files are added
// and deleted comes back, brings none of the deleted files back, and
// reports itself caught up only once it matches its peers.
func TestNodeUploadsFrontDownCatchesUp(t *testing.T) {
	fronts := newTestFarm(t, 3)
	for _, f := range fronts {
		f.start(t, fronts)
	}
	f1, f3 := fronts[0], fronts[2]
	allCaughtUp(t, fronts)
	for _, name := range []string{"keep.jpg", "gone.jpg", "dir/gone-too.jpg"} {
		write(t, filepath.Join(f1.dir, name), name)
	}
	converged(t, fronts, nil, "before the outage")

	f3.stop()
	if err := os.Remove(filepath.Join(f1.dir, "gone.jpg")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(f1.dir, "dir/gone-too.jpg")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(f1.dir, "new.jpg"), "added while front3 was down")
	converged(t, fronts[:2], nil, "during the outage")
	if _, ok := tree(t, f3.dir)["gone.jpg"]; !ok {
		t.Fatal("front3 lost gone.jpg while down: the test proves nothing")
	}

	start := time.Now()
	f3.start(t, fronts)
	if f3.syncer.Status().CaughtUp {
		t.Fatal("a returning front reports itself caught up before its catch-up")
	}
	want := tree(t, f1.dir)
	eventually(t, 30*time.Second, "front3 caught up", func() bool {
		if !f3.syncer.Status().CaughtUp {
			return false
		}
		// Caught up means matching: at that moment front3 holds what
		// its peers hold.
		if got := tree(t, f3.dir); !sameTree(got, want) {
			t.Fatalf("front3 reported caught up holding %v, its peers %v", got, want)
		}
		return true
	})
	t.Logf("front3 caught up %v after it came back", time.Since(start).Round(time.Millisecond))
	converged(t, fronts, want, "after the outage")
	for _, f := range fronts {
		tr := tree(t, f.dir)
		for _, gone := range []string{"gone.jpg", "dir/gone-too.jpg"} {
			if _, ok := tr[gone]; ok {
				out, _ := f.ns.Run("sh", "-c", "ls -la --time-style=full-iso "+filepath.Join(f.dir, deletedDir)+" "+filepath.Join(f.dir)+" "+filepath.Join(f.dir, "dir"))
				t.Errorf("%s: %s was resurrected:\n%s", f.name, gone, out)
			}
		}
	}
}

// TestNodeUploadsConfinement: a peer without the secret, an address that
// is no front, a symlink out of the tree and a path with ".." are all
// refused; nothing lands outside the declared directory.
func TestNodeUploadsConfinement(t *testing.T) {
	fronts := newTestFarm(t, 4)
	farm, stranger := fronts[:3], fronts[3]
	for _, f := range farm {
		f.start(t, farm)
	}
	f1, f2, f3 := farm[0], farm[1], farm[2]
	allCaughtUp(t, farm)
	src := t.TempDir()
	write(t, filepath.Join(src, "intruder.txt"), "should not land")

	t.Run("peer without the secret", func(t *testing.T) {
		wrong := filepath.Join(t.TempDir(), "password")
		write(t, wrong, "not-the-farm-secret\n")
		out, err := f3.ns.Run("rsync", "-t", "--password-file="+wrong,
			filepath.Join(src, "intruder.txt"), "rsync://webfarm@10.98.0.1:8873/default.www.media/")
		if err == nil || !strings.Contains(out, "auth failed") {
			t.Fatalf("rsync with a wrong password: %v: %s", err, out)
		}
		t.Logf("refused: %s", firstLine(out))
	})
	t.Run("address that is no front", func(t *testing.T) {
		out, err := stranger.ns.Run("rsync", "-t", "--password-file="+filepath.Join(stranger.state, "password"),
			filepath.Join(src, "intruder.txt"), "rsync://webfarm@10.98.0.1:8873/default.www.media/")
		if err == nil {
			t.Fatalf("a stranger with the secret pushed: %s", out)
		}
		t.Logf("refused: %s", firstLine(out))
	})
	if _, err := os.Lstat(filepath.Join(f1.dir, "intruder.txt")); err == nil {
		t.Fatal("intruder.txt landed on front1")
	}

	t.Run("symlink out of the tree", func(t *testing.T) {
		if err := os.Symlink("/etc", filepath.Join(f1.dir, "escape")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../../../../etc/passwd", filepath.Join(f1.dir, "escape-relative")); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(f1.dir, "marker.txt"), "after the links")
		eventually(t, 20*time.Second, "marker on front2", func() bool { return tree(t, f2.dir)["marker.txt"] != "" })
		for _, name := range []string{"escape", "escape-relative"} {
			if target, err := os.Readlink(filepath.Join(f2.dir, name)); err == nil {
				t.Errorf("front2 holds %s -> %s", name, target)
			}
		}
		// A front that sends the link anyway (no --safe-links): the
		// daemon munges it, so it points nowhere.
		f3.ns.MustRun(t, "rsync", "-l", "--password-file="+filepath.Join(f3.state, "password"),
			filepath.Join(f1.dir, "escape"), "rsync://webfarm@10.98.0.2:8873/default.www.media/")
		target, err := os.Readlink(filepath.Join(f2.dir, "escape"))
		if err != nil || !strings.HasPrefix(target, "/rsyncd-munged/") {
			t.Fatalf("a link sent as is landed as %q (%v)", target, err)
		}
		if _, err := os.ReadFile(filepath.Join(f2.dir, "escape", "passwd")); err == nil {
			t.Fatal("the munged link still leads out of the tree")
		}
	})
	t.Run("path with ..", func(t *testing.T) {
		outside := filepath.Dir(f2.dir)
		out, _ := f3.ns.Run("rsync", "-t", "--password-file="+filepath.Join(f3.state, "password"),
			filepath.Join(src, "intruder.txt"), "rsync://webfarm@10.98.0.2:8873/default.www.media/../../")
		if _, err := os.Lstat(filepath.Join(outside, "intruder.txt")); err == nil {
			t.Fatalf("a push to ../ landed outside the directory: %s", out)
		}
		if _, err := os.Lstat(filepath.Join(filepath.Dir(outside), "intruder.txt")); err == nil {
			t.Fatalf("a push to ../../ landed outside the directory: %s", out)
		}
		t.Logf("rsync to module/../../: %s", bytes.TrimSpace([]byte(firstLine(out))))
	})
}

// idle waits until no front has a change left to send or judge, and every
// front holds the same tree, at two polls in a row: no push is in flight
// then (a push keeps its paths queued until it ends).
func idle(t *testing.T, fronts []*testFront) {
	t.Helper()
	calm := 0
	eventually(t, 20*time.Second, "every front idle on the same tree", func() bool {
		ref := tree(t, fronts[0].dir)
		for _, f := range fronts {
			if f.syncer.Status().Pending != 0 || !sameTree(ref, tree(t, f.dir)) {
				calm = 0
				return false
			}
		}
		calm++
		return calm >= 2
	})
}

// noErrors waits until no front reports an error.
func noErrors(t *testing.T, fronts []*testFront) {
	t.Helper()
	var last string
	if eventuallyQuiet(t, 20*time.Second, func() bool {
		for _, f := range fronts {
			if st := f.syncer.Status(); st.LastError != "" {
				last = f.name + ": " + st.LastError
				return false
			}
		}
		return true
	}) < 0 {
		t.Fatalf("after 20s an error is still reported: %s", last)
	}
}

func allCaughtUp(t *testing.T, fronts []*testFront) {
	t.Helper()
	allCaughtUpWithin(t, fronts, 20*time.Second)
}

func allCaughtUpWithin(t *testing.T, fronts []*testFront, d time.Duration) {
	t.Helper()
	var behind string
	if eventuallyQuiet(t, d, func() bool {
		for _, f := range fronts {
			if st := f.syncer.Status(); !st.CaughtUp {
				behind = f.name + ": " + st.LastError
				return false
			}
		}
		return true
	}) < 0 {
		t.Fatalf("after %v: not every front caught up; %s", d, behind)
	}
}
