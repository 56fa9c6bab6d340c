package uploads

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestSnapshotHoldsWhatSettled: a push reads the versions that settled
// even when a peer's version is renamed over a path while it runs (the
// torn read of concurrent writes), leaves out a path that changed before
// the snapshot, keeps a deletion and its parents absent, and gives directories the
// module's mode and time.
func TestSnapshotHoldsWhatSettled(t *testing.T) {
	s := &Syncer{Module: Module{Name: "m", Path: t.TempDir(), FileMode: 0o644, DirMode: 0o755}}
	s.init()
	if err := s.prepare(); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(time.Minute).Truncate(time.Second)
	live := func(p string) string { return filepath.Join(s.Module.Path, p) }
	writeAt(t, live("2026/12/mine.txt"), "front1 newer", at.Add(300*time.Millisecond))
	writeAt(t, live("changed.txt"), "as it settled", at)
	if err := os.Chmod(live("2026"), 0o750); err != nil {
		t.Fatal(err)
	}
	dirTime := at.Add(-time.Hour)
	if err := os.Chtimes(live("2026"), dirTime, dirTime); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"2026/12/mine.txt", "changed.txt"} {
		st, err := os.Lstat(live(p))
		if err != nil {
			t.Fatal(err)
		}
		s.settledAs[p] = stampOf(st)
	}
	s.settledAs["deleted.txt"], s.settledAs["gone/dir/x.txt"] = gone, gone
	writeAt(t, live("changed.txt"), "a peer's, landed since", at.Add(time.Second))

	root := s.snapshotRoot("front2")
	left, linked, err := s.snapshot(root, []string{"2026/12/mine.txt", "changed.txt", "deleted.txt", "gone/dir/x.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(left, []string{"changed.txt"}) || !slices.Equal(linked, []string{"2026/12/mine.txt"}) {
		t.Errorf("left out %q and linked %q, want changed.txt and 2026/12/mine.txt", left, linked)
	}
	// A peer's version of the same size renamed over the path, as rsync's
	// daemon does, after the snapshot: the push still reads this front's.
	peers := filepath.Join(t.TempDir(), "peers")
	writeAt(t, peers, "front2 older", at.Add(100*time.Millisecond))
	if err := os.Rename(peers, live("2026/12/mine.txt")); err != nil {
		t.Skipf("the temporary directories are on two filesystems: %v", err)
	}
	snap := filepath.Join(root, "2026/12/mine.txt")
	if got, err := os.ReadFile(snap); err != nil || string(got) != "front1 newer" {
		t.Errorf("the snapshot holds %q (%v), want front1's version", got, err)
	}
	if st, err := os.Lstat(snap); err != nil || !st.ModTime().Equal(at.Add(300*time.Millisecond)) {
		t.Errorf("the snapshot's time is not the settled version's: %v", err)
	}
	// A deleted tree's parents are absent too: the push would make them
	// again on the peers.
	for _, p := range []string{"changed.txt", "deleted.txt", "gone"} {
		if _, err := os.Lstat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Errorf("%s is in the snapshot (%v)", p, err)
		}
	}
	st, err := os.Lstat(filepath.Join(root, "2026"))
	if err != nil || st.Mode().Perm() != 0o750 || !st.ModTime().Equal(dirTime) {
		t.Errorf("the snapshot's 2026 is %v, want the module's mode 0750 and time %v (%v)", st.Mode(), dirTime, err)
	}
}

// TestSnapshotKeepsOnlyWhatThePushNeeds: a peer's snapshot directory
// keeps its directories from one push to the next, but never one that
// the next push does not need. Kept, a directory deleted here since would
// go out again, made anew on the peers, and one where a file is now would
// hold that file out of the snapshot.
func TestSnapshotKeepsOnlyWhatThePushNeeds(t *testing.T) {
	s := &Syncer{Module: Module{Name: "m", Path: t.TempDir(), FileMode: 0o644, DirMode: 0o755}}
	s.init()
	if err := s.prepare(); err != nil {
		t.Fatal(err)
	}
	live := func(p string) string { return filepath.Join(s.Module.Path, p) }
	root := s.snapshotRoot("front2")
	// push snapshots paths, and returns what the snapshot holds before
	// the push's files are unlinked.
	push := func(paths ...string) map[string]string {
		t.Helper()
		left, linked, err := s.snapshot(root, paths)
		if err != nil || len(left) > 0 {
			t.Fatalf("snapshot of %q: left out %q (%v)", paths, left, err)
		}
		defer unlinkSnapshot(root, linked)
		return tree(t, root)
	}
	write(t, live("2026/12/one.jpg"), "one")
	write(t, live("became/a/file/x.jpg"), "x")
	push("2026/12/one.jpg", "became/a/file/x.jpg")
	if got := tree(t, root); !slices.Equal(sortedKeys(got), []string{"2026", "2026/12", "became", "became/a", "became/a/file"}) {
		t.Fatalf("after the first push, the snapshot holds %v, want its directories only", sortedKeys(got))
	}

	if err := os.RemoveAll(live("2026")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(live("became/a/file")); err != nil {
		t.Fatal(err)
	}
	write(t, live("became/a/file"), "now a file")
	s.settledAs["2026"], s.settledAs["2026/12"], s.settledAs["2026/12/one.jpg"] = gone, gone, gone
	// What a push that failed to clear its snapshot left.
	write(t, filepath.Join(root, "became/a/stale.jpg"), "left")
	got := push("2026", "2026/12", "2026/12/one.jpg", "became/a/file")
	if !slices.Equal(sortedKeys(got), []string{"became", "became/a", "became/a/file"}) || got["became/a/file"] == "dir" {
		t.Errorf("the second snapshot held %v, want became/a/file as a file, and no 2026 nor stale.jpg", sortedKeys(got))
	}
}
