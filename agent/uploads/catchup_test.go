package uploads

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestPulledLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Pulled
		ok   bool
	}{
		{"recv >f+++++++++ 12345 a/x.jpg", Pulled{Path: "a/x.jpg", Size: 12345, Received: true}, true},
		{"recv cd+++++++++ 4096 a/", Pulled{Path: "a", Size: 4096}, true},
		{"recv .f...p..... 7 b c.pdf", Pulled{Path: "b c.pdf", Size: 7}, true},
		{`recv >f+++++++++ 3 new\#012line`, Pulled{Path: "new\nline", Size: 3, Received: true}, true},
		{"recv cd+++++++++ 4096 ./", Pulled{}, false},
		{"send >f+++++++++ 3 x", Pulled{}, false},
		{"recv >f+++++++++ x y", Pulled{}, false},
	} {
		got, ok := pulledLine(tc.line)
		if got != tc.want || ok != tc.ok {
			t.Errorf("pulledLine(%q) = %+v, %v; want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

// TestSetAsideListsEveryPath: the sweep finds each path with a version
// set aside, whichever sender's, once.
func TestSetAsideListsEveryPath(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"front2/a/b/x.bin.~12~", "front2/a/b/x.bin.~13~", "front3/y.bin.~4~", "front3/z.bin"} {
		write(t, filepath.Join(root, f), "v")
	}
	if err := os.MkdirAll(filepath.Join(root, "front3", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := setAside(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a/b/x.bin", "y.bin", "z.bin"}; !slices.Equal(got, want) {
		t.Errorf("setAside = %v, want %v", got, want)
	}
	if got, err := setAside(filepath.Join(root, "none")); err != nil || len(got) != 0 {
		t.Errorf("setAside of nothing = %v, %v", got, err)
	}
}

// TestPairMoveTellsRenamesHere: a rename seen whole, both halves in
// watched directories, is a process's here; a half alone (the daemon's
// and the agent's moves to and from their own directory) or a rename
// onto the same name (an exchange) is not.
func TestPairMoveTellsRenamesHere(t *testing.T) {
	in := &inotify{}
	if got := in.pairMove(unix.IN_MOVED_FROM, 7, "/m/a.jpg"); got != "" {
		t.Fatalf("the leaving half named %q", got)
	}
	if got := in.pairMove(unix.IN_MOVED_TO, 7, "/m/moved/a.jpg"); got != "/m/a.jpg" {
		t.Errorf("a whole rename: %q, want /m/a.jpg", got)
	}
	if got := in.pairMove(unix.IN_MOVED_TO, 8, "/m/b.jpg"); got != "" {
		t.Errorf("a file renamed in from elsewhere: %q", got)
	}
	in.pairMove(unix.IN_MOVED_FROM, 9, "/m/c.jpg")
	if got := in.pairMove(unix.IN_MOVED_TO, 9, "/m/c.jpg"); got != "" {
		t.Errorf("an exchange onto the same name: %q", got)
	}
}

// TestKeepNewestTombstone: of a tombstone that landed and the one it
// replaced, the newer stays, whichever it is.
func TestKeepNewestTombstone(t *testing.T) {
	for _, landedNewer := range []bool{true, false} {
		s := &Syncer{Module: Module{Path: t.TempDir()}}
		path := tombstoneName("a.jpg")
		older, newer := time.Unix(1_000, 0), time.Unix(2_000, 0)
		landed, replaced := older, newer
		if landedNewer {
			landed, replaced = newer, older
		}
		abs := filepath.Join(s.Module.Path, path)
		kept := filepath.Join(s.Module.Path, replacedDir, "front2", path+keptSuffix(1))
		for f, at := range map[string]time.Time{abs: landed, kept: replaced} {
			write(t, f, "front2\n")
			if err := os.Chtimes(f, at, at); err != nil {
				t.Fatal(err)
			}
		}
		s.keepNewestTombstone(path, []string{kept})
		st, err := os.Lstat(abs)
		if err != nil || !st.ModTime().Equal(newer) {
			t.Errorf("landed newer %v: the tombstone left is %v (%v), want %v", landedNewer, st.ModTime(), err, newer)
		}
		if _, err := os.Lstat(kept); !os.IsNotExist(err) {
			t.Errorf("landed newer %v: the version set aside is still there", landedNewer)
		}
	}
}

// TestInSnapshotLeavesFilesBeingWritten: a catch-up's push sends what the
// snapshot holds, less a file a process still writes (a link to it in
// the snapshot is the same file): sent, it went out half written.
func TestInSnapshotLeavesFilesBeingWritten(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "whole.jpg"), "whole")
	writer, err := os.Create(filepath.Join(root, "half.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	if _, known := openForWriting(filepath.Join(root, "half.jpg")); !known {
		t.Skip("leases are not supported here (fs.leases-enable, or the filesystem)")
	}
	got := inSnapshot(root, []string{"whole.jpg", "half.jpg", "gone.jpg"})
	if want := []string{"whole.jpg"}; !slices.Equal(got, want) {
		t.Errorf("inSnapshot = %q, want %q", got, want)
	}
}
