package uploads

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// A verdict is carried out on the path as it was weighed, or not at all.
// Judging takes time (a tie between two 100 MB versions reads both), and
// a process here, or the daemon of a peer from before staging (land.go),
// may put another version in place meanwhile: a restore by a plain rename
// once put an older version over one that landed during the judgment, and
// that newer version was lost on this front for good
// (TestSyncerKeepsAVersionThatLandsWhileJudging). So the verdict swaps
// versions in one step and looks at what it displaced: anything other
// than the version weighed is left among the versions set aside, and the
// path is judged again.

// swapIn puts the version at from in place at abs in one step, and
// reports whether what it displaced is the version weighed (nothing, when
// weighed is nil); that one is then at from, to be removed. Otherwise what
// landed meanwhile is at from, or from has not moved: nothing is lost.
func swapIn(from, abs string, weighed os.FileInfo) (bool, error) {
	if weighed == nil {
		err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, abs, unix.RENAME_NOREPLACE)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EEXIST):
			return false, nil
		case unsupported(err):
			if _, err := os.Lstat(abs); err == nil {
				return false, nil
			}
			return true, os.Rename(from, abs)
		}
		return false, err
	}
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, abs, unix.RENAME_EXCHANGE)
	switch {
	case err == nil:
		st, err := os.Lstat(from)
		if err == nil && st.IsDir() {
			// A directory landed: among the versions set aside, which
			// hold files only, it would be hidden for good.
			return false, unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, abs, unix.RENAME_EXCHANGE)
		}
		return err == nil && sameVersion(st, weighed), nil
	case errors.Is(err, unix.ENOENT):
		// Deleted since it was weighed: judged again.
		return false, nil
	case unsupported(err):
		// A file system without renameat2's flags: the window is
		// narrowed to the rename, not closed.
		if st, err := os.Lstat(abs); err != nil || !sameVersion(st, weighed) {
			return false, nil
		}
		return true, os.Rename(from, abs)
	}
	return false, err
}

// takeAside moves the file at abs to aside, a fresh name, and reports
// whether it is the version weighed (or abs is gone already). What landed
// meanwhile goes back to abs, unless yet another version did: then it
// stays at aside, among the versions set aside. Left there as a version
// of an absent path, it would be judged against a deletion dated now.
func takeAside(abs, aside string, weighed os.FileInfo) (bool, error) {
	if err := os.Rename(abs, aside); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return true, nil
		}
		return false, err
	}
	if st, err := os.Lstat(aside); err == nil && sameVersion(st, weighed) {
		return true, nil
	}
	if _, err := swapIn(aside, abs, nil); err != nil {
		return false, err
	}
	return false, nil
}

// keptSlot is a fresh name among the versions of path set aside for
// sender (kept.go). Its directories are made as the daemon's own: owned
// by the module's owner, as whom the daemon sets versions aside there too.
func (s *Syncer) keptSlot(sender, path string) (string, error) {
	if err := s.mkdirsOwned(filepath.Join(replacedDir, sender, filepath.Dir(path))); err != nil {
		return "", err
	}
	return filepath.Join(s.Module.Path, replacedDir, sender, path+keptSuffix(transfers.Add(1))), nil
}

// mkdirsOwned makes rel, below the module's path, and what it lacks of
// its parents, with the module's owner and directory mode.
func (s *Syncer) mkdirsOwned(rel string) error {
	_, err := s.makeDirsOwned(rel)
	return err
}

// makeDirsOwned is mkdirsOwned, and returns the directories it made.
func (s *Syncer) makeDirsOwned(rel string) ([]string, error) {
	m := s.Module
	dir := m.Path
	var made []string
	for _, part := range strings.Split(filepath.Clean(rel), string(filepath.Separator)) {
		dir = filepath.Join(dir, part)
		err := os.Mkdir(dir, m.DirMode.Perm())
		if errors.Is(err, fs.ErrExist) {
			// Never through a link: made here, it could lead out of
			// the tree.
			if st, err := os.Lstat(dir); err != nil || !st.IsDir() {
				return made, fmt.Errorf("making %s: not a directory (a link, or a file, is in the way)", dir)
			}
			continue
		}
		if err != nil {
			return made, err
		}
		if err := os.Lchown(dir, int(m.UID), int(m.GID)); err != nil {
			return made, err
		}
		rel, _ := filepath.Rel(m.Path, dir)
		made = append(made, rel)
	}
	return made, nil
}

// ownSetAside gives the module's owner each directory among the versions
// set aside for sender that is not its: a pull runs as root, and makes
// them as root. The daemon sets that peer's versions aside there as the
// module's owner, and was refused every later push from it.
func (s *Syncer) ownSetAside(sender string) error {
	m := s.Module
	return filepath.WalkDir(filepath.Join(m.Path, replacedDir, sender), func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || !d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if m.owns(info) {
			return nil
		}
		return os.Lchown(path, int(m.UID), int(m.GID))
	})
}

// sameVersion tells whether two looks at a path saw the same version: the
// same file, unchanged.
func sameVersion(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && stampOf(a) == stampOf(b)
}

// unsupported tells whether renameat2 lacks a flag on this file system.
func unsupported(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP)
}
