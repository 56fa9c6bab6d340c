package uploads

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
)

// What a peer pushes, rsync's daemon writes into the sender's staging
// directory (stagingFor), never into the tree, and the agent puts it in
// place: in one step (renameat2), it takes the path and sets what held it
// aside for the sender (kept.go), to be judged when the path settles, as
// if rsync had replaced it. rsync itself links the version it replaces
// aside, sets the new one's attributes, then renames it over the path: a
// version written there in between (an upload renamed into place, or
// created) was lost for good, and a file the rename brought back over a
// deletion settled as this front's before its transfer was logged
// (TestNodeUploadsRandomTrial). Here nothing lands in the tree before its
// transfer is filed, and nothing in the tree is replaced unseen.

// landRetry is how soon a transfer logged before its file was staged is
// tried again: rsync renames it there within microseconds, mostly.
const landRetry = 2 * time.Millisecond

// maxLandTries bounds the tries to land one version while processes here
// create and remove its path between two steps.
const maxLandTries = 3

// land puts the version staged at staged in place at path, and sets what
// it displaced aside for sender. It returns the paths it changed: path,
// after the directories it made for it, which are the peer's too (rsync
// logs none it finds in the staging directory already). None when nothing
// is staged there (yet): rsync logs a file before it renames it there.
func (s *Syncer) land(path, staged, sender string) ([]string, error) {
	st, err := os.Lstat(staged)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var made []string
	if dir := filepath.Dir(path); dir != "." {
		if made, err = s.makeDirsOwned(dir); err != nil {
			return made, fmt.Errorf("making the directory of %s: %w", path, err)
		}
	}
	changed := append(made, path)
	abs := filepath.Join(s.Module.Path, path)
	if st.IsDir() {
		return changed, s.landDir(path, abs, sender)
	}
	parent, err := openBeneath(s.Module.Path, filepath.Dir(path))
	if err != nil {
		return made, fmt.Errorf("landing %s: %w", path, err)
	}
	defer unix.Close(parent)
	// Taken out of the staging directory first: the sender's next push
	// of the path lands there, and must not replace what this one
	// displaces.
	held := filepath.Join(s.Module.Path, tmpDir, "landing"+keptSuffix(transfers.Add(1)))
	if err := os.Rename(staged, held); err != nil {
		return made, err
	}
	at := landingPlace{path: path, dir: parent, name: filepath.Base(path)}
	for try := 0; try < maxLandTries; try++ {
		landed, err := s.swapLanding(at, held, sender)
		if err != nil {
			_ = os.Remove(held)
		}
		if landed || err != nil {
			return changed, err
		}
	}
	_ = os.Remove(held)
	return changed, fmt.Errorf("landing %s: its path changed %d times while landing", path, maxLandTries)
}

// landingPlace is where a version lands: path, as name in the directory
// open at dir.
type landingPlace struct {
	path string
	dir  int
	name string
}

// openBeneath opens dir, below root, refusing any symbolic link on the
// way (openat2, RESOLVE_NO_SYMLINKS): a link that a process here made in
// the tree would take a peer's file out of it.
func openBeneath(root, dir string) (int, error) {
	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rootFd)
	fd, err := unix.Openat2(rootFd, dir, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	})
	if err != nil {
		return -1, &fs.PathError{Op: "opening without following links", Path: dir, Err: err}
	}
	return fd, nil
}

// swapLanding puts held at its place: where that is free, by a rename
// that fails if a version appeared since; otherwise by swapping the two
// and setting what it displaced aside for sender. It reports false when
// the place filled or emptied between the two: the caller tries again.
func (s *Syncer) swapLanding(at landingPlace, held, sender string) (bool, error) {
	err := unix.Renameat2(unix.AT_FDCWD, held, at.dir, at.name, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return true, nil
	case unsupported(err):
		return true, s.linkAsideAndRename(at, held, sender)
	case !errors.Is(err, unix.EEXIST):
		return false, err
	}
	err = unix.Renameat2(unix.AT_FDCWD, held, at.dir, at.name, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	displaced, err := os.Lstat(held)
	if err != nil {
		return false, err
	}
	if displaced.IsDir() {
		return s.landOverDirectory(at, held)
	}
	aside, err := s.keptSlot(sender, at.path)
	if err != nil {
		return false, err
	}
	return true, os.Rename(held, aside)
}

// landOverDirectory handles a peer's file where this front holds a
// directory (swapped into held): an empty one gives way, as rsync's
// --force did; one that holds files stays, and the peer's file is
// dropped, for the catch-up to reconcile (both fronts hold their own).
func (s *Syncer) landOverDirectory(at landingPlace, held string) (bool, error) {
	// The directory goes back in place, the peer's file to held.
	if err := unix.Renameat2(unix.AT_FDCWD, held, at.dir, at.name, unix.RENAME_EXCHANGE); err != nil {
		return false, err
	}
	if err := unix.Unlinkat(at.dir, at.name, unix.AT_REMOVEDIR); err != nil {
		return false, fmt.Errorf("landing %s: a directory is there: %w", at.path, err)
	}
	return false, nil
}

// linkAsideAndRename puts held at its place where renameat2 lacks its flags:
// as rsync does, what is there is linked aside, then replaced. The
// window between the two is narrowed, not closed.
func (s *Syncer) linkAsideAndRename(at landingPlace, held, sender string) error {
	var st unix.Stat_t
	if unix.Fstatat(at.dir, at.name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		aside, err := s.keptSlot(sender, at.path)
		if err != nil {
			return err
		}
		if err := unix.Linkat(at.dir, at.name, unix.AT_FDCWD, aside, 0); err != nil {
			return err
		}
	}
	return unix.Renameat(unix.AT_FDCWD, held, at.dir, at.name)
}

// landDir makes the directory a peer sent, owned as the daemon would
// make it. A file here where the peer has a directory is set aside for
// the sender, as rsync's --force did.
func (s *Syncer) landDir(path, abs, sender string) error {
	cur, err := os.Lstat(abs)
	switch {
	case err == nil && cur.IsDir():
		return nil
	case err == nil:
		aside, err := s.keptSlot(sender, path)
		if err != nil {
			return err
		}
		if err := os.Rename(abs, aside); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	return s.mkdirsOwned(path)
}

// landTransfer puts in place what a transfer into a staging directory
// wrote, and returns its sender and the paths it changed. One not staged
// yet waits for the next step while its session writes. Deletions there
// are rsync's own, of what was staged before.
func (s *Syncer) landTransfer(ctx context.Context, t Transfer, staging map[int]bool) (string, []string) {
	sender, ok := stagedSender(t.Dest)
	if !ok {
		logr.FromContextOrDiscard(ctx).Info("A peer wrote outside its staging directory: ignored", "directory", t.Dest, "path", t.Path)
		return "", nil
	}
	if t.Op != OpRecv {
		return sender, nil
	}
	changed, err := s.land(t.Path, filepath.Join(s.Module.Path, t.Dest, t.Path), sender)
	if err != nil {
		s.fail(err)
	}
	if len(changed) == 0 && err == nil && staging[t.Session] {
		s.unlanded = append(s.unlanded, t)
	}
	return sender, changed
}

// stagedSender is the sender whose staging directory dest is, and
// whether it is one: a session that wrote anywhere else below the agent's
// directory is no push of a peer's.
func stagedSender(dest string) (string, bool) {
	sender, ok := strings.CutPrefix(dest, inDir+"/")
	if !ok || sender == "" || strings.ContainsRune(sender, '/') || sender == "." || sender == ".." {
		return "", false
	}
	return sender, true
}
