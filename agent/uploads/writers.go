package uploads

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// inotify tells when a write ends only for a file written under a name
// it watched: a file found by the walk of a directory that appeared, or
// linked into place after an O_TMPFILE write, or truncated by path, shows
// no close_write. The kernel knows better: it refuses a read lease on a
// file that any process holds open for writing (fcntl(2), F_SETLEASE), so
// taking one and giving it back at once asks whether a writer is left.
// The agent runs as root (CAP_LEASE); a writer that opens the file in the
// microseconds between waits for them, and the SIGIO that tells this
// process so is one a Go program takes no action on.

// openForWriting tells whether a process holds path, a regular file, open
// for writing; known is false where the kernel cannot tell: leases off
// (fs.leases-enable) or not supported by the filesystem, or path not a
// regular file this process may open. Nothing else is opened: opening a
// device can act on it.
func openForWriting(path string) (open, known bool) {
	if st, err := os.Lstat(path); err != nil || !st.Mode().IsRegular() {
		return false, false
	}
	// O_NONBLOCK: a file under another's write lease fails at once
	// rather than waiting for the lease to be broken.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, false
	}
	defer unix.Close(fd)
	// Replaced since the Lstat.
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false, false
	}
	err = setLease(fd, unix.F_RDLCK)
	switch {
	case err == nil:
		_ = setLease(fd, unix.F_UNLCK)
		return false, true
	case errors.Is(err, unix.EAGAIN):
		return true, true
	}
	return false, false
}

// beingWritten tells whether a process holds the file at abs open for
// writing, as far as the kernel can tell.
func beingWritten(abs string) bool {
	open, _ := openForWriting(abs)
	return open
}

func setLease(fd, kind int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, kind)
	return err
}

// foundState is what the walk of a directory that appeared makes of a
// path it found: a regular file no process writes is complete, one still
// written is open; anything else, or a file the kernel cannot tell of,
// settles after the quiet period.
func foundState(path string) (complete, open bool) {
	open, known := openForWriting(path)
	return known && !open, known && open
}
