package uploads

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// TestNodeUploadsCatchUpReownsWithoutSending: fronts that start with the
// same files, owned by root rather than the declared owner, are caught
// up by pulls that give the files their declared owner; a front must not
// take the attribute events of those chowns for local changes and send
// every file to its peers.
func TestNodeUploadsCatchUpReownsWithoutSending(t *testing.T) {
	fronts := newTestFarm(t, 3)
	src := filepath.Join(t.TempDir(), "old")
	for i := range 300 {
		write(t, filepath.Join(src, fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%03d.txt", i)), fmt.Sprintf("old file %d", i))
	}
	for _, f := range fronts {
		if err := os.MkdirAll(f.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		// Each front its own copy, same content and times.
		if out, err := exec.Command("cp", "-a", src, f.dir+"/").CombinedOutput(); err != nil {
			t.Fatalf("copying: %v: %s", err, out)
		}
	}
	for _, f := range fronts {
		f.start(t, fronts)
	}
	allCaughtUp(t, fronts)
	idle(t, fronts)
	for _, f := range fronts {
		st, err := os.Lstat(filepath.Join(f.dir, "old/d0/f000.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if sys := st.Sys().(*syscall.Stat_t); sys.Uid != testUID || sys.Gid != testGID || st.Mode().Perm() != 0o644 {
			t.Errorf("%s: old/d0/f000.txt owned %d:%d, mode %v; want %d:%d, 0644", f.name, sys.Uid, sys.Gid, st.Mode().Perm(), testUID, testGID)
		}
	}
	consistently(t, 10*DefaultQuiet, func() {
		for _, f := range fronts {
			if st := f.syncer.Status(); st.Pushed != 0 {
				t.Fatalf("%s sent %d paths after its catch-up (conflicts %d)", f.name, st.Pushed, st.Conflicts)
			}
		}
	})
}
