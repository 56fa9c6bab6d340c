package uploads

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// A push reads a snapshot of its paths, not the directory itself. rsync's
// sender reads a file's size and time when it lists it, and its content
// only when it sends it: a peer's version renamed over the path in between
// (a concurrent write of the same path, received here) went out with this
// front's time and the peer's content, a version that exists nowhere and
// that the rule then made win on every front (TestNodeUploadsThreeFronts,
// concurrent writes: front2's older content under front1's newer time).
// A hard link holds one inode: what rsync lists is what it sends.

// snapshot links each path of a push, as it is now, under root, an empty
// directory made to mirror the module's, and returns the paths it left
// out: those no longer what settled here (dropReplaced; a
// peer's version that landed since must not go out under this front's
// name). A path deleted here is absent from the snapshot, so that the push
// deletes it. Directories, the paths' own and their parents, take the
// mode and time of the module's, which rsync sends with them.
func (s *Syncer) snapshot(root string, paths []string) (left []string, err error) {
	s.mu.Lock()
	settled := make(map[string]stamp, len(paths))
	for _, p := range paths {
		if as, ok := s.settledAs[p]; ok {
			settled[p] = as
		}
	}
	s.mu.Unlock()
	dirs := map[string]bool{".": true}
	for _, p := range paths {
		kept, err := s.link(root, p, settled, dirs)
		if err != nil {
			return nil, err
		}
		if !kept {
			left = append(left, p)
		}
	}
	return left, s.mirrorDirs(root, dirs)
}

// link puts path into the snapshot at root, and tells whether it did:
// not when the path is no longer as it settled. Every directory it
// creates is noted in dirs.
func (s *Syncer) link(root, path string, settled map[string]stamp, dirs map[string]bool) (bool, error) {
	live, snap := filepath.Join(s.Module.Path, path), filepath.Join(root, path)
	st, err := os.Lstat(live)
	switch {
	case errors.Is(err, os.ErrNotExist):
		// Its parents are not created: the push would make them again
		// on the peers, where they may be deleted too.
		as, ok := settled[path]
		return !ok || as == gone, nil
	case err != nil:
		return false, fmt.Errorf("reading %s: %w", live, err)
	case st.IsDir():
		return true, s.mkdirs(root, path, dirs)
	}
	if err := s.mkdirs(root, filepath.Dir(path), dirs); err != nil {
		return false, err
	}
	if err := os.Link(live, snap); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// Deleted since the Lstat: no longer as it settled.
			return false, nil
		}
		return false, fmt.Errorf("linking %s into the push snapshot: %w", live, err)
	}
	// The inode linked, not the one read above, is what goes out.
	if st, err = os.Lstat(snap); err != nil {
		return false, err
	}
	if as, ok := settled[path]; ok && as != stampOf(st) {
		return false, os.Remove(snap)
	}
	return true, nil
}

// mkdirs creates dir and its parents in the snapshot at root, noting each
// in dirs; nothing when dir is noted already (a burst links thousands of
// files into one directory).
func (s *Syncer) mkdirs(root, dir string, dirs map[string]bool) error {
	if dirs[dir] {
		return nil
	}
	for d := dir; !dirs[d]; d = filepath.Dir(d) {
		dirs[d] = true
	}
	return os.MkdirAll(filepath.Join(root, dir), 0o700)
}

// mirrorDirs gives the snapshot's directories the mode and time of the
// module's, deepest first: linking into a directory changes its time.
func (s *Syncer) mirrorDirs(root string, dirs map[string]bool) error {
	order := sortedKeys(dirs)
	slices.SortFunc(order, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, d := range order {
		snap := filepath.Join(root, d)
		st, err := os.Lstat(filepath.Join(s.Module.Path, d))
		if err != nil || !st.IsDir() {
			// Deleted since it was created here: if nothing was
			// linked below it, the push must not make it again.
			_ = os.Remove(snap)
			continue
		}
		if err := os.Chmod(snap, st.Mode().Perm()); err != nil {
			return fmt.Errorf("mirroring %s into the push snapshot: %w", d, err)
		}
		if err := os.Chtimes(snap, st.ModTime(), st.ModTime()); err != nil {
			return fmt.Errorf("mirroring %s into the push snapshot: %w", d, err)
		}
	}
	return nil
}
