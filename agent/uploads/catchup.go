package uploads

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/go-logr/logr"
)

// runCatchUp catches up, and reports the directory caught up once it
// matches every peer that answered; until then it is retried.
func (s *Syncer) runCatchUp(ctx context.Context) bool {
	matched, err := s.catchUpOnce(ctx)
	now := s.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.status.LastError = err.Error()
	}
	if !matched {
		s.failed[""] = now
		return false
	}
	delete(s.failed, "")
	s.catchUp, s.status.CaughtUp = false, true
	// The pulls set versions aside too.
	s.sweepSoon()
	// In step with every peer that answered: collect, and ask the
	// peers, at once.
	s.collectAt, s.outOfStep, s.caughtUpAt = now, false, now
	if err == nil {
		s.status.LastError = ""
	}
	return true
}

// catchUpOnce brings the directory in line with the peers: it pulls what
// they have (judged as any peer's write), applies every tombstone (a front
// that missed deletions does not bring the files back), pushes what only
// it has, then asks each peer what a pull would still change. A peer that
// does not answer is left out: a front whose peers are all away is caught
// up with itself and serves.
func (s *Syncer) catchUpOnce(ctx context.Context) (bool, error) {
	s.mu.Lock()
	peers := append([]Peer(nil), s.peers...)
	s.mu.Unlock()
	root := s.Module.Path
	var errs []error
	for _, p := range peers {
		got, err := s.pull(ctx, p)
		s.kept = nil
		for _, path := range got {
			s.judge(ctx, OpRecv, path, p.Name)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("pulling from %s: %w", p.Name, err))
		}
		if err := s.ownSetAside(p.Name); err != nil {
			errs = append(errs, fmt.Errorf("owning what the pull from %s set aside: %w", p.Name, err))
		}
	}
	s.applyTombstones(ctx)
	if s.awayTooLong(s.Clock.Now()) {
		s.dropUnshared(ctx, s.onlyHere(ctx, s.witnesses(ctx, peers)))
	}
	matched := true
	for _, p := range peers {
		if err := s.pushWhatDiffers(ctx, p); err != nil {
			errs = append(errs, fmt.Errorf("pushing to %s: %w", p.Name, err))
			continue
		}
		diff, err := s.Rsync.Differences(ctx, root, p, s.Module)
		if err != nil {
			errs = append(errs, fmt.Errorf("comparing with %s: %w", p.Name, err))
			continue
		}
		diff = s.reown(ctx, p, diff)
		if len(diff) > 0 {
			matched = false
			errs = append(errs, fmt.Errorf("%d differences with %s, first %q", len(diff), p.Name, diff[0]))
		}
	}
	logr.FromContextOrDiscard(ctx).V(1).Info("Caught up", "directory", root, "matched", matched, "peers", len(peers))
	return matched, errors.Join(errs...)
}

// pullTries bounds how often a pull fetches again the files it got mixed.
const pullTries = 3

// pull fetches from peer what differs, into pulledDir, fetches again
// what came mixed once that is removed, and puts what came whole in
// place (land.go). A peer's daemon lists a file, then opens it to send
// it: a version renamed over it between the two went out with the size
// and time of the first and the content of the second, a version that
// existed nowhere, and that wins wherever its time is the newest
// (TestNodeUploadsRandomTrial).
func (s *Syncer) pull(ctx context.Context, peer Peer) ([]string, error) {
	var got []string
	var err error
	paths := []string(nil)
	staging := filepath.Join(s.Module.Path, pulledDir)
	for try := 0; try < pullTries; try++ {
		if rmErr := os.RemoveAll(staging); rmErr != nil {
			return got, errors.Join(err, rmErr)
		}
		pulled, pullErr := s.Rsync.Pull(ctx, s.Module.Path, peer, s.Module, paths)
		err = errors.Join(err, pullErr)
		paths = discardMixed(staging, pulled)
		for _, p := range pulled {
			if slices.Contains(paths, p.Path) {
				continue
			}
			staged := filepath.Join(staging, p.Path)
			// Made by root: the pull compares no owners (Rsync.Pull).
			_ = os.Lchown(staged, int(s.Module.UID), int(s.Module.GID))
			changed, landErr := s.land(p.Path, staged, peer.Name)
			err = errors.Join(err, landErr)
			got = append(got, changed...)
		}
		if len(paths) == 0 {
			return got, err
		}
		logr.FromContextOrDiscard(ctx).V(1).Info("Pulling again what came mixed", "peer", peer.Name, "paths", len(paths))
	}
	return got, errors.Join(err, fmt.Errorf("%d files came mixed %d times, first %q", len(paths), pullTries, paths[0]))
}

// reown gives the declared owner and mode to the files here that differ
// from peer's in those alone (a front's files from before its agent), and
// returns the rest of diff. Each is judged as the peer's write, as the
// pull's were when rsync re-owned them: their attribute events must not
// be taken for local changes, and every file sent to every peer. A file
// written here since the comparison is judged as the peer's too, and
// differs from it at the next comparison: the catch-up pulls the peer's,
// and the rule keeps the newer.
func (s *Syncer) reown(ctx context.Context, peer Peer, diff []string) []string {
	paths := attributesOnly(diff)
	if len(paths) == 0 {
		return diff
	}
	m := s.Module
	for _, path := range paths {
		abs := filepath.Join(m.Path, path)
		st, err := os.Lstat(abs)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		if os.Lchown(abs, int(m.UID), int(m.GID)) != nil || chmodIf(abs, st, m.FileMode.Perm()) != nil {
			continue
		}
		s.judge(ctx, OpRecv, path, peer.Name)
	}
	return slices.DeleteFunc(diff, func(line string) bool {
		_, reowned := attributesOnlyLine(line)
		return reowned
	})
}

// discardMixed removes each file a pull wrote into staging whose size is
// not the one listed, and returns their paths.
func discardMixed(staging string, pulled []Pulled) []string {
	var mixed []string
	for _, p := range pulled {
		abs := filepath.Join(staging, p.Path)
		st, err := os.Lstat(abs)
		// Nothing else writes there: the file is the one rsync wrote,
		// and came whole if it has the size listed.
		if !p.Received || err != nil || !st.Mode().IsRegular() || st.Size() == p.Size {
			continue
		}
		if err := os.Remove(abs); err == nil {
			mixed = append(mixed, p.Path)
		}
	}
	return mixed
}

// pushWhatDiffers sends peer what it lacks or holds otherwise, listed by
// a dry run and sent from a snapshot, as every push. Read from the
// directory, a path that a peer's version was renamed over between
// rsync's listing and its reading went out with this front's time and
// the peer's content, a version that existed nowhere, and that won
// everywhere when its time was the newest (TestNodeUploadsRandomTrial).
// A path gone since the dry run is not sent: not a deletion of this
// front's.
func (s *Syncer) pushWhatDiffers(ctx context.Context, peer Peer) error {
	paths, err := s.Rsync.Unsent(ctx, s.Module.Path, peer.Addr, s.Module.Name)
	if err != nil || len(paths) == 0 {
		return err
	}
	push, err := s.startPush(ctx, peer)
	if err != nil {
		return err
	}
	defer push.close()
	_, linked, err := s.snapshot(push.root, paths)
	defer unlinkSnapshot(push.root, linked)
	if err != nil {
		return err
	}
	return push.send(inSnapshot(push.root, paths))
}

// inSnapshot are the paths that the snapshot at root holds, less the
// files a process here still writes: a catch-up's push sent a file that
// an upload was writing in place, half written, to every peer
// (TestNodeUploadsRandomTrial). Such a file goes once its writer closes
// it, as every local change.
func inSnapshot(root string, paths []string) []string {
	var held []string
	for _, p := range paths {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil && !beingWritten(filepath.Join(root, p)) {
			held = append(held, p)
		}
	}
	return held
}

// witnesses are the peers whose in-step record is younger than
// TombstoneTTL (less the skew): they applied every deletion whose
// tombstone may be collected, so what they all lack was deleted. A peer
// away as long, or with no record (new, or from before the record), says
// nothing: two fronts back together would each keep, and send, a deleted
// file because the other holds it.
func (s *Syncer) witnesses(ctx context.Context, peers []Peer) []Peer {
	horizon := s.Clock.Now().Add(-s.TombstoneTTL + s.ClockSkew)
	var out []Peer
	for _, p := range peers {
		at, err := s.Rsync.LastInStep(ctx, s.Module.Path, p.Addr, s.Module.Name)
		if err != nil {
			logr.FromContextOrDiscard(ctx).V(1).Info("Reading a peer's in-step record", "peer", p.Name, "error", err.Error())
			continue
		}
		if at.After(horizon) {
			out = append(out, p)
		}
	}
	return out
}

// onlyHere is what this front holds and none of peers does (of those
// that answer).
func (s *Syncer) onlyHere(ctx context.Context, peers []Peer) []string {
	var lacks [][]string
	for _, p := range peers {
		if l, err := s.Rsync.Lacks(ctx, s.Module.Path, p, s.Module); err == nil {
			lacks = append(lacks, l)
		}
	}
	return onlyHere(lacks)
}

// applyTombstones deletes every path that a tombstone here beats.
func (s *Syncer) applyTombstones(ctx context.Context) {
	entries, err := os.ReadDir(filepath.Join(s.Module.Path, deletedDir))
	if err != nil {
		s.fail(fmt.Errorf("reading the tombstones: %w", err))
		return
	}
	for _, e := range entries {
		s.judgeTombstone(ctx, deletedDir+"/"+e.Name(), s.Rsync.Self)
	}
}
