package uploads

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
	root, module := s.Module.Path, s.Module.Name
	var errs []error
	for _, p := range peers {
		got, err := s.Rsync.Pull(ctx, root, p, module, s.Module)
		s.kept = nil
		for _, path := range got {
			s.judge(ctx, OpRecv, path, p.Name)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("pulling from %s: %w", p.Name, err))
		}
	}
	s.applyTombstones(ctx)
	if s.awayTooLong(s.Clock.Now()) {
		s.dropUnshared(ctx, s.onlyHere(ctx, s.witnesses(ctx, peers)))
	}
	matched := true
	for _, p := range peers {
		if err := s.Rsync.PushAll(ctx, root, p.Addr, module); err != nil {
			errs = append(errs, fmt.Errorf("pushing to %s: %w", p.Name, err))
			continue
		}
		diff, err := s.Rsync.Differences(ctx, root, p, module)
		if err != nil {
			errs = append(errs, fmt.Errorf("comparing with %s: %w", p.Name, err))
			continue
		}
		if len(diff) > 0 {
			matched = false
			errs = append(errs, fmt.Errorf("%d differences with %s, first %q", len(diff), p.Name, diff[0]))
		}
	}
	logr.FromContextOrDiscard(ctx).V(1).Info("Caught up", "directory", root, "matched", matched, "peers", len(peers))
	return matched, errors.Join(errs...)
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
		if l, err := s.Rsync.Lacks(ctx, s.Module.Path, p, s.Module.Name); err == nil {
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
