package uploads

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// preparedSyncer is a Syncer, not running, on a fresh directory owned by
// the test's own user.
func preparedSyncer(t *testing.T) *Syncer {
	t.Helper()
	s := &Syncer{Module: Module{Name: "m", Path: filepath.Join(t.TempDir(), "media"),
		UID: int64(os.Getuid()), GID: int64(os.Getgid()), FileMode: 0o644, DirMode: 0o755}}
	s.init()
	if err := s.prepare(); err != nil {
		t.Fatal(err)
	}
	return s
}

// stage writes content into sender's staging directory at path, as the
// daemon does with a push (into its temporary directory, then renamed),
// and returns where.
func stage(t *testing.T, s *Syncer, sender, path, content string, mtime time.Time) string {
	t.Helper()
	staged := filepath.Join(s.Module.Path, stagingFor(sender), path)
	tmp := filepath.Join(s.Module.Path, tmpDir, "."+filepath.Base(path)+".XXXXXX")
	writeAt(t, tmp, content, mtime)
	if err := os.MkdirAll(filepath.Dir(staged), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, staged); err != nil {
		t.Fatal(err)
	}
	return staged
}

// setAsideFor lists the contents of the versions of path set aside for
// sender.
func setAsideFor(t *testing.T, s *Syncer, sender, path string) []string {
	t.Helper()
	var contents []string
	for _, k := range (&keptIndex{root: filepath.Join(s.Module.Path, replacedDir), dirs: map[string]map[string][]string{}}).versions(sender, path) {
		data, err := os.ReadFile(k)
		if err != nil {
			t.Fatal(err)
		}
		contents = append(contents, string(data))
	}
	return contents
}

// TestLandSetsAsideWhatItDisplaces: a peer's version takes the path, and
// the version that held it, written here, is set aside for the judgment,
// never replaced unseen: rsync's own rename into the tree lost an upload
// renamed into place between its backup and its rename.
func TestLandSetsAsideWhatItDisplaces(t *testing.T) {
	s := preparedSyncer(t)
	abs := filepath.Join(s.Module.Path, "a/b.jpg")
	writeAt(t, abs, "written here", time.Now())
	staged := stage(t, s, "front2", "a/b.jpg", "the peer's", time.Now().Add(-time.Minute))

	changed, err := s.land("a/b.jpg", staged, "front2")
	if err != nil || !slices.Equal(changed, []string{"a/b.jpg"}) {
		t.Fatalf("land = %q, %v; want [a/b.jpg], nil", changed, err)
	}
	if data, _ := os.ReadFile(abs); string(data) != "the peer's" {
		t.Errorf("a/b.jpg holds %q, want the peer's version", data)
	}
	if got := setAsideFor(t, s, "front2", "a/b.jpg"); len(got) != 1 || got[0] != "written here" {
		t.Errorf("set aside for front2: %q, want the version written here", got)
	}
	if _, err := os.Lstat(staged); !os.IsNotExist(err) {
		t.Errorf("the staged version is still staged: %v", err)
	}
}

// TestLandOnAFreePath: nothing held the path, nothing is set aside; the
// directories it lacked are made, and named among the peer's changes.
func TestLandOnAFreePath(t *testing.T) {
	s := preparedSyncer(t)
	staged := stage(t, s, "front2", "new/dir/c.jpg", "the peer's", time.Now())
	changed, err := s.land("new/dir/c.jpg", staged, "front2")
	if want := []string{"new", "new/dir", "new/dir/c.jpg"}; err != nil || !slices.Equal(changed, want) {
		t.Fatalf("land = %q, %v; want %q, nil", changed, err, want)
	}
	if data, _ := os.ReadFile(filepath.Join(s.Module.Path, "new/dir/c.jpg")); string(data) != "the peer's" {
		t.Errorf("new/dir/c.jpg holds %q, want the peer's version", data)
	}
	if got := setAsideFor(t, s, "front2", "new/dir/c.jpg"); len(got) != 0 {
		t.Errorf("set aside: %q, want nothing", got)
	}
}

// TestLandNothingStagedYet: rsync logs a file before it renames it into
// the staging directory; landing it then reports nothing, and changes
// nothing.
func TestLandNothingStagedYet(t *testing.T) {
	s := preparedSyncer(t)
	abs := filepath.Join(s.Module.Path, "d.jpg")
	writeAt(t, abs, "written here", time.Now())
	changed, err := s.land("d.jpg", filepath.Join(s.Module.Path, stagingFor("front2"), "d.jpg"), "front2")
	if err != nil || len(changed) != 0 {
		t.Fatalf("land = %q, %v; want nothing, nil", changed, err)
	}
	if data, _ := os.ReadFile(abs); string(data) != "written here" {
		t.Errorf("d.jpg holds %q, want it untouched", data)
	}
}

// TestLandDirectories: a peer's directory is made here; a file here in
// its way is set aside, as rsync's --force did; a peer's file where a
// directory holds files here leaves the directory whole.
func TestLandDirectories(t *testing.T) {
	s := preparedSyncer(t)
	if err := os.MkdirAll(filepath.Join(s.Module.Path, stagingFor("front2"), "album"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeAt(t, filepath.Join(s.Module.Path, "album"), "a file here", time.Now())
	changed, err := s.land("album", filepath.Join(s.Module.Path, stagingFor("front2"), "album"), "front2")
	if err != nil || !slices.Equal(changed, []string{"album"}) {
		t.Fatalf("landing a directory = %q, %v; want [album], nil", changed, err)
	}
	if st, err := os.Lstat(filepath.Join(s.Module.Path, "album")); err != nil || !st.IsDir() {
		t.Errorf("album is not a directory: %v", err)
	}
	if got := setAsideFor(t, s, "front2", "album"); len(got) != 1 || got[0] != "a file here" {
		t.Errorf("set aside for front2: %q, want the file that was in the way", got)
	}

	writeAt(t, filepath.Join(s.Module.Path, "full/kept.jpg"), "kept", time.Now())
	staged := stage(t, s, "front2", "full", "a peer's file", time.Now())
	if _, err := s.land("full", staged, "front2"); err == nil || !strings.Contains(err.Error(), "a directory is there") {
		t.Errorf("landing a file over a directory that holds files: %v, want the directory named", err)
	}
	if data, _ := os.ReadFile(filepath.Join(s.Module.Path, "full/kept.jpg")); string(data) != "kept" {
		t.Errorf("full/kept.jpg holds %q, want it kept", data)
	}
}

// TestSyncerLandsAPushAndJudgesIt: a push logged before rsync staged its
// file lands once staged, while its session goes on; judged against the
// newer version written here meanwhile, it loses, and that version stays
// and is counted as a conflict.
func TestSyncerLandsAPushAndJudgesIt(t *testing.T) {
	s := startLocalSyncer(t)
	session := os.Getpid()
	s.receiving(nil, []int{session})
	peer := netip.MustParseAddr("192.0.2.7")
	s.Received(Transfer{Op: OpRecv, Module: "m", Peer: peer, Path: "e.jpg", Dest: stagingFor("front2"), Session: session})
	time.Sleep(5 * s.Quiet)
	stage(t, s, "front2", "e.jpg", "the peer's", time.Now().Add(-time.Hour))
	abs := filepath.Join(s.Module.Path, "e.jpg")
	eventually(t, 5*time.Second, "the peer's version landed", func() bool {
		data, _ := os.ReadFile(abs)
		return string(data) == "the peer's"
	})

	writeAt(t, abs+".tmp", "newer, written here", time.Now())
	if err := os.Rename(abs+".tmp", abs); err != nil {
		t.Fatal(err)
	}
	stage(t, s, "front2", "e.jpg", "the peer's older one", time.Now().Add(-time.Minute))
	s.Received(Transfer{Op: OpRecv, Module: "m", Peer: peer, Path: "e.jpg", Dest: stagingFor("front2"), Session: session})
	s.receiving(nil, nil)
	eventually(t, 5*time.Second, "the newer version in place, counted, nothing left aside", func() bool {
		data, _ := os.ReadFile(abs)
		return string(data) == "newer, written here" && s.Status().Conflicts == 1 && len(setAsideFor(t, s, "front2", "e.jpg")) == 0
	})
}

// TestLandRefusesALinkOutOfTheTree: a symbolic link that a process here
// made in the tree never takes a peer's file, nor a directory made for
// it, out of the tree.
func TestLandRefusesALinkOutOfTheTree(t *testing.T) {
	s := preparedSyncer(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(s.Module.Path, "out")); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"out/f.jpg", "out/new/f.jpg"} {
		staged := stage(t, s, "front2", path, "the peer's", time.Now())
		if _, err := s.land(path, staged, "front2"); err == nil {
			t.Errorf("landing %s through a link out of the tree: no error", path)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("written out of the tree: %v", entries)
	}
}
