package uploads

import (
	"errors"
	"fmt"
	"io/fs"
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
//
// Each peer's pushes take turns in one snapshot directory, and its
// directories are kept from one push to the next: made and removed for
// every push, a directory's block was allocated and freed each time, and
// a disk busy writing back held the push meanwhile (45 ms). The files are
// unlinked once the push ended; what a push does not need is removed
// before it links anything, so that a directory kept never stands for a
// path deleted here.

// snapshotRoot is the snapshot directory of the pushes to peer.
func (s *Syncer) snapshotRoot(peer string) string {
	return filepath.Join(s.Module.Path, pushDir, peer)
}

// snapshot links each path of a push, as it is now, under root, and
// returns the paths it left out, those no longer what settled here
// (dropReplaced; a peer's version that landed since must not go out under
// this front's name), and the files it linked. A path deleted here is
// absent from the snapshot, so that the push deletes it. Directories, the
// paths' own and their parents, take the mode and time of the module's,
// which rsync sends with them.
func (s *Syncer) snapshot(root string, paths []string) (left, linked []string, err error) {
	settled := s.settledStamps(paths)
	files, dirs, left, err := s.lookUp(paths, settled)
	if err != nil {
		return nil, nil, err
	}
	if err := keepOnly(root, dirs); err != nil {
		return nil, nil, err
	}
	for _, p := range files {
		switch ok, err := s.link(root, p, settled); {
		case err != nil:
			return nil, linked, err
		case ok:
			linked = append(linked, p)
		default:
			left = append(left, p)
		}
	}
	return left, linked, s.mirrorDirs(root, dirs)
}

// settledStamps are paths as they settled, where they did.
func (s *Syncer) settledStamps(paths []string) map[string]stamp {
	s.mu.Lock()
	defer s.mu.Unlock()
	settled := make(map[string]stamp, len(paths))
	for _, p := range paths {
		if as, ok := s.settledAs[p]; ok {
			settled[p] = as
		}
	}
	return settled
}

// lookUp sorts paths by what they are here: files and links to link,
// directories, which dirs gets with the files' parents, and those left
// out, deleted since they settled. A path deleted as it settled is none
// of these: absent from the snapshot, the push deletes it. Its parents
// are not made: the push would make them again on the peers, where they
// may be deleted too.
func (s *Syncer) lookUp(paths []string, settled map[string]stamp) (files []string, dirs map[string]bool, left []string, err error) {
	dirs = map[string]bool{".": true}
	for _, p := range paths {
		st, err := os.Lstat(filepath.Join(s.Module.Path, p))
		switch {
		case errors.Is(err, os.ErrNotExist):
			if as, ok := settled[p]; ok && as != gone {
				left = append(left, p)
			}
		case err != nil:
			return nil, nil, nil, fmt.Errorf("reading %s: %w", filepath.Join(s.Module.Path, p), err)
		case st.IsDir():
			addWithParents(dirs, p)
		default:
			addWithParents(dirs, filepath.Dir(p))
			files = append(files, p)
		}
	}
	return files, dirs, left, nil
}

// addWithParents notes dir and its parents in dirs.
func addWithParents(dirs map[string]bool, dir string) {
	for d := dir; !dirs[d]; d = filepath.Dir(d) {
		dirs[d] = true
	}
}

// keepOnly makes root hold dirs and nothing else: what an earlier push
// left is removed, but for the directories this one needs.
func keepOnly(root string, dirs map[string]bool) error {
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case errors.Is(err, os.ErrNotExist) && path == root:
			return fs.SkipAll
		case err != nil:
			return err
		case !d.IsDir():
			return os.Remove(path)
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || dirs[rel] {
			return err
		}
		if err := os.RemoveAll(path); err != nil {
			return err
		}
		return fs.SkipDir
	})
	if err != nil {
		return fmt.Errorf("clearing the push snapshot %s: %w", root, err)
	}
	for _, d := range sortedKeys(dirs) {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return fmt.Errorf("making the push snapshot's %s: %w", d, err)
		}
	}
	return nil
}

// link puts path into the snapshot at root, and tells whether it did:
// not when the path is no longer as it settled.
func (s *Syncer) link(root, path string, settled map[string]stamp) (bool, error) {
	live, snap := filepath.Join(s.Module.Path, path), filepath.Join(root, path)
	if err := os.Link(live, snap); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// Deleted since it was looked up: no longer as it settled.
			return false, nil
		}
		return false, fmt.Errorf("linking %s into the push snapshot: %w", live, err)
	}
	// The inode linked, not the one looked up, is what goes out.
	st, err := os.Lstat(snap)
	if err != nil {
		return false, err
	}
	if as, ok := settled[path]; ok && as != stampOf(st) {
		return false, os.Remove(snap)
	}
	return true, nil
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
			// Deleted since it was looked up: if nothing was linked
			// below it, the push must not make it again.
			_ = os.Remove(snap)
			continue
		}
		if err := chmodLike(snap, st); err != nil {
			return fmt.Errorf("mirroring %s into the push snapshot: %w", d, err)
		}
		if err := os.Chtimes(snap, st.ModTime(), st.ModTime()); err != nil {
			return fmt.Errorf("mirroring %s into the push snapshot: %w", d, err)
		}
	}
	return nil
}

// chmodLike gives the snapshot's dir the mode of the module's, st,
// unless it has it: kept from an earlier push, it mostly does.
func chmodLike(dir string, st os.FileInfo) error {
	now, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	return chmodIf(dir, now, st.Mode().Perm())
}

// unlinkSnapshot removes from the snapshot at root the files a push
// linked, once it ended: linked, they hold their inodes, and the space of
// a file deleted here. Its directories stay for the next push. What it
// cannot remove, the next push's keepOnly removes, or fails on.
func unlinkSnapshot(root string, linked []string) {
	for _, p := range linked {
		_ = os.Remove(filepath.Join(root, p))
	}
}
