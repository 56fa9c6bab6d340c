package uploads

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"time"
)

// A version that a peer's transfer sets aside is judged when its path
// settles (judgeArrivals). rsync links it aside before it renames its own
// version over the path, and a path can settle, on an earlier event,
// between the two, or be judged from a listing of the versions set aside
// read just before: with no later event on the path, that version stayed
// aside for good, and a newer upload was lost
// (TestNodeUploadsRandomTrial). So a while after the last transfer
// arrived, the Syncer looks once through what is set aside and has each
// path found there judged again. An idle front does not look.

// sweepAfter, in quiet periods, is how long after the last transfer
// arrived the versions set aside are looked through: long past the
// judgment of any transfer then under way.
const sweepAfter = 10

// sweepSoon schedules a look through the versions set aside, unless one
// is due already. Called with s.mu held.
func (s *Syncer) sweepSoon() {
	if s.sweepAt.IsZero() {
		s.sweepAt = s.Clock.Now().Add(sweepAfter * s.Quiet)
	}
}

// sweep, when due, has every path with a version set aside judged again
// at its next step.
func (s *Syncer) sweep() {
	s.mu.Lock()
	due := !s.sweepAt.IsZero() && !s.Clock.Now().Before(s.sweepAt)
	if due {
		s.sweepAt = time.Time{}
	}
	s.mu.Unlock()
	if !due {
		return
	}
	paths, err := setAside(filepath.Join(s.Module.Path, replacedDir))
	if err != nil {
		s.fail(err)
	}
	now := s.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range paths {
		// The loop's next wake-up (nextDue) counts them: the sweep
		// runs in its step.
		if _, busy := s.pending[p]; !busy {
			s.pending.touch(p, now, false)
		}
	}
}

// setAside lists the paths that have versions set aside below root, one
// directory per sender.
func setAside(root string) ([]string, error) {
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err != nil:
			return err
		case d.IsDir():
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		// The first element names the sender.
		if _, version, ok := strings.Cut(rel, string(filepath.Separator)); ok {
			seen[filepath.Join(filepath.Dir(version), keptBase(filepath.Base(version)))] = true
		}
		return nil
	})
	return sortedKeys(seen), err
}
