package uploads

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestInotifyTellsCompleteWrites: a closed write, a rename into place and a
// new directory end a change; a write still open and a mode change do not.
func TestInotifyTellsCompleteWrites(t *testing.T) {
	root := t.TempDir()
	w, err := newWatcher(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.close() })

	open, err := os.Create(filepath.Join(root, "open.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if _, err := open.WriteString("half"); err != nil {
		t.Fatal(err)
	}
	expect(t, w, "open.txt", false)

	write(t, filepath.Join(root, ".tmp-up.jpg"), "whole")
	expect(t, w, ".tmp-up.jpg", true)
	if err := os.Rename(filepath.Join(root, ".tmp-up.jpg"), filepath.Join(root, "up.jpg")); err != nil {
		t.Fatal(err)
	}
	expect(t, w, "up.jpg", true)
	if err := os.Chmod(filepath.Join(root, "up.jpg"), 0o600); err != nil {
		t.Fatal(err)
	}
	expect(t, w, "up.jpg", false)
	if err := os.Mkdir(filepath.Join(root, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	expect(t, w, "dir", true)
}

// expect reads events until one of name that ended a write, when
// complete, and returns it; when not, the first of name must not have.
func expect(t *testing.T, w *watcher, name string, complete bool) event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-w.events:
			switch {
			case filepath.Base(ev.Name) != name:
			case ev.complete == complete:
				return ev
			case !complete:
				t.Fatalf("%s %v ended a write", name, ev.Op)
			}
		case err := <-w.errors:
			t.Fatal(err)
		case <-timeout:
			t.Fatalf("no event of %s within 5 s", name)
		}
	}
}

// TestInotifyTellsWritesInPlace: a write into the name is told apart from
// a rename into place, which is how rsync's daemon lands what it receives,
// except in a directory on another filesystem than the root's, where the
// daemon copies into the name.
func TestInotifyTellsWritesInPlace(t *testing.T) {
	root := t.TempDir()
	mounted := filepath.Join(root, "mounted")
	if err := os.Mkdir(mounted, 0o755); err != nil {
		t.Fatal(err)
	}
	canMount := os.Geteuid() == 0
	if canMount {
		if err := unix.Mount("tmpfs", mounted, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Unmount(mounted, unix.MNT_DETACH) })
	}
	w, err := newWatcher(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.close() })

	write(t, filepath.Join(root, "here.jpg"), "written here")
	if ev := expect(t, w, "here.jpg", true); !ev.inPlace {
		t.Error("a file written into its name: not told in place")
	}
	write(t, filepath.Join(root, ".aside"), "written aside")
	expect(t, w, ".aside", true)
	if err := os.Rename(filepath.Join(root, ".aside"), filepath.Join(root, "renamed.jpg")); err != nil {
		t.Fatal(err)
	}
	if ev := expect(t, w, "renamed.jpg", true); ev.inPlace {
		t.Error("a file renamed into place: told written in place")
	}
	if !canMount {
		t.Skip("mounting a filesystem below the root needs root")
	}
	write(t, filepath.Join(mounted, "there.jpg"), "written on another filesystem")
	if ev := expect(t, w, "there.jpg", true); ev.inPlace {
		t.Error("a file written on another filesystem than the root's: told written in place")
	}
}
