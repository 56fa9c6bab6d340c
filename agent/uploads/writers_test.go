package uploads

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestOpenForWriting: a file is open for writing while a writer holds it,
// whatever readers do, and no longer once the writer closed it; a
// directory or a symlink cannot tell.
func TestOpenForWriting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "upload.bin")
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if open, known := openForWriting(path); !known {
		t.Skip("leases are not supported here (fs.leases-enable, or the filesystem)")
	} else if !open {
		t.Error("a file held open for writing is taken for closed")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if open, known := openForWriting(path); open || !known {
		t.Errorf("a closed file (still open for reading): open %v, known %v; want closed", open, known)
	}
	if err := os.Symlink("upload.bin", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, "link")} {
		if _, known := openForWriting(p); known {
			t.Errorf("%s: taken for a file whose writers are known", p)
		}
	}
}

// TestSyncerLooksForWritersInotifyMisses: inotify shows no close_write of
// a file written through an O_TMPFILE descriptor and linked into place,
// nor of one found by the walk of a directory renamed into place while
// its writer still holds it. Each waited openQuiet (12 s here), or was
// sent at once, half written. Now each waits while its writer holds it,
// and goes once the writer let go.
func TestSyncerLooksForWritersInotifyMisses(t *testing.T) {
	s := startSyncerWithDeadPeer(t)
	if _, known := openForWriting(s.Rsync.PasswordFile); !known {
		t.Skip("leases are not supported here")
	}
	for _, tc := range []struct {
		name string
		// write makes path's first half, held open by the file it
		// returns, under path.
		write func(t *testing.T, path string) *os.File
	}{
		{"O_TMPFILE, linked into place", func(t *testing.T, path string) *os.File {
			fd, err := unix.Open(filepath.Dir(path), unix.O_TMPFILE|unix.O_WRONLY, 0o644)
			if err != nil {
				t.Skipf("O_TMPFILE: %v", err)
			}
			f := os.NewFile(uintptr(fd), "tmpfile")
			if _, err := f.WriteString("first half, "); err != nil {
				t.Fatal(err)
			}
			if err := unix.Linkat(fd, "", unix.AT_FDCWD, path, unix.AT_EMPTY_PATH); err != nil {
				t.Skipf("linkat: %v", err)
			}
			return f
		}},
		{"found in a directory renamed into place", func(t *testing.T, path string) *os.File {
			// Made beside the directory, on its filesystem.
			elsewhere := filepath.Join(filepath.Dir(s.Module.Path), "elsewhere")
			if err := os.MkdirAll(elsewhere, 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.Create(filepath.Join(elsewhere, filepath.Base(path)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString("first half, "); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(elsewhere, filepath.Dir(path)); err != nil {
				t.Fatal(err)
			}
			return f
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(s.Module.Path, filepath.Base(t.Name()))
			if tc.name == "O_TMPFILE, linked into place" {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dir, "upload.bin")
			rel, _ := filepath.Rel(s.Module.Path, path)
			f := tc.write(t, path)
			defer f.Close()
			consistently(t, 10*s.Quiet, func() {
				if _, queued := s.queuedAs(rel); queued {
					t.Fatal("queued while its writer still holds it")
				}
			})
			if _, err := f.WriteString("second half"); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			// Well before openQuiet.
			eventually(t, openQuiet*s.Quiet/4, "queued once its writer let go", func() bool {
				as, queued := s.queuedAs(rel)
				return queued && as.size == int64(len("first half, second half"))
			})
		})
	}
}

// TestSyncerSendsAFileTruncatedByPath: truncate(2) by path shows a
// modify and no close_write; no writer holds the file, so it goes once
// looked at, not after openQuiet (12 s here).
func TestSyncerSendsAFileTruncatedByPath(t *testing.T) {
	s := startSyncerWithDeadPeer(t)
	if _, known := openForWriting(s.Rsync.PasswordFile); !known {
		t.Skip("leases are not supported here")
	}
	path := filepath.Join(s.Module.Path, "log.txt")
	write(t, path, "a long first version")
	eventually(t, 5*time.Second, "log.txt queued", func() bool {
		_, queued := s.queuedAs("log.txt")
		return queued
	})
	if err := os.Truncate(path, 5); err != nil {
		t.Fatal(err)
	}
	eventually(t, openQuiet*s.Quiet/4, "log.txt queued as truncated", func() bool {
		as, queued := s.queuedAs("log.txt")
		return queued && as.size == 5
	})
}
