package uploads

import (
	"os"
	"path/filepath"
	"testing"
	"time"
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
// complete; when not, the first of name must not have.
func expect(t *testing.T, w *watcher, name string, complete bool) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-w.events:
			switch {
			case filepath.Base(ev.Name) != name:
			case ev.complete == complete:
				return
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
