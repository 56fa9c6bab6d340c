package uploads

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// Defaults of the tombstones' collection.
const (
	// DefaultTombstoneTTL is how long a deletion is remembered: longer
	// than any front may stay away and come back as itself. A front away
	// longer catches up as a new one: what it alone holds, unchanged for
	// that long, is dropped rather than sent (dropUnshared).
	DefaultTombstoneTTL = 7 * 24 * time.Hour
	// DefaultClockSkew is the most two fronts' clocks may differ.
	DefaultClockSkew = time.Minute
	// maxCollectEvery bounds the pause between two collections; an idle
	// front wakes up for nothing else.
	maxCollectEvery = time.Hour
	// probeRetries, in Retry periods, is when peers that did not all
	// answer are asked again.
	probeRetries = 5
)

// collectEvery is the pause between two collections.
func (s *Syncer) collectEvery() time.Duration { return min(s.TombstoneTTL/4, maxCollectEvery) }

// collect, every collectEvery while caught up, asks every peer whether
// this front is still one of theirs (their daemons let in only the fronts
// they sync with) and records the time when all say yes; a front that was
// refused catches up once let in again, and is recorded in step only then.
// The peers are asked beside the loop (startProbe); the step after their
// answers acts on them, and then removes the tombstones older than
// TombstoneTTL that no peer still has to be sent:
// every front that was in step has them applied, and one that was away
// for longer drops the deleted files at its catch-up (dropUnshared).
func (s *Syncer) collect(ctx context.Context) {
	now := s.Clock.Now()
	s.mu.Lock()
	probed := s.probed
	s.probed = nil
	due := !s.catchUp && !s.probing && !now.Before(s.collectAt)
	if due {
		s.collectAt, s.probing = now.Add(s.collectEvery()), true
	}
	peers := append([]Peer(nil), s.peers...)
	s.mu.Unlock()
	if probed != nil {
		s.collectAfter(ctx, *probed)
	}
	if due {
		s.startProbe(ctx, now, peers)
	}
}

// probeResult is what the peers answered to a probe started at.
type probeResult struct {
	at                time.Time
	answered, refused bool
}

// startProbe asks the peers beside the loop, and hands their answers to
// its next step: a peer that does not answer takes --contimeout (5 s),
// for which the local changes must not wait.
func (s *Syncer) startProbe(ctx context.Context, at time.Time, peers []Peer) {
	s.pushes.Add(1)
	go func() {
		defer s.pushes.Done()
		answered, refused := s.probe(ctx, peers)
		s.mu.Lock()
		s.probing, s.probed = false, &probeResult{at: at, answered: answered, refused: refused}
		s.mu.Unlock()
		s.poke()
	}()
}

// collectAfter acts on what the peers answered, unless a catch-up became
// due or ended meanwhile: it asks them again once over.
func (s *Syncer) collectAfter(ctx context.Context, r probeResult) {
	s.mu.Lock()
	stale := s.catchUp || r.at.Before(s.caughtUpAt)
	s.mu.Unlock()
	if stale {
		return
	}
	switch {
	case r.refused:
		s.mu.Lock()
		s.outOfStep, s.collectAt = true, r.at.Add(probeRetries*s.Retry)
		s.mu.Unlock()
	case !r.answered:
		// Not up yet, or on its way out of the peers: ask again soon.
		s.mu.Lock()
		s.collectAt = r.at.Add(probeRetries * s.Retry)
		s.mu.Unlock()
	case s.wasOutOfStep():
		// Let in again after being left out: it may have missed
		// deletions. Recorded in step once caught up.
		s.RequestCatchUp()
		return
	default:
		s.markInStep(r.at)
		s.mu.Lock()
		if len(s.failed) == 0 {
			// Every peer answers and none waits for a push: what a
			// catch-up that left a peer out reported is over.
			s.status.LastError = ""
		}
		s.mu.Unlock()
	}
	s.collectTombstones(ctx, r.at)
}

func (s *Syncer) wasOutOfStep() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outOfStep
}

// probe asks every peer's daemon to let this front into the module: it
// lets in only the fronts it syncs with. answered is true when all did;
// refused when one turned this front away rather than not answering.
func (s *Syncer) probe(ctx context.Context, peers []Peer) (answered, refused bool) {
	answered = true
	for _, p := range peers {
		err := s.Rsync.Probe(ctx, s.Module.Path, p.Addr, s.Module.Name)
		if err == nil {
			continue
		}
		logr.FromContextOrDiscard(ctx).V(1).Info("A peer did not let this front in", "peer", p.Name, "error", err.Error())
		answered = false
		refused = refused || turnedAway(err)
	}
	return answered, refused
}

// turnedAway tells rsync's exit code 5: the daemon answered and refused
// (hosts deny, auth failed), as opposed to no daemon there (10, 35).
func turnedAway(err error) bool {
	var exit *exec.ExitError
	return errors.As(err, &exit) && exit.ExitCode() == 5
}

// inStepFile records, by its time, when this front was last in step. It
// lives with the files it speaks of: the agent's state directory does not
// outlive a reboot, the most common way for a front to be away.
func (s *Syncer) inStepFile() string { return filepath.Join(s.Module.Path, inStepFile) }

func (s *Syncer) markInStep(at time.Time) {
	err := os.WriteFile(s.inStepFile(), nil, 0o600)
	if err == nil {
		err = os.Chtimes(s.inStepFile(), at, at)
	}
	if err != nil {
		s.fail(fmt.Errorf("recording that %s is in step: %w", s.Module.Path, err))
		return
	}
	s.dropped = nil
}

// awayTooLong tells whether this front may have missed deletions whose
// tombstones are collected: it was last in step longer than TombstoneTTL
// ago (less the skew). A front that never was is new: what it holds is
// its own.
func (s *Syncer) awayTooLong(now time.Time) bool {
	st, err := os.Stat(s.inStepFile())
	return err == nil && now.Sub(st.ModTime()) > s.TombstoneTTL-s.ClockSkew
}

// collectTombstones removes the tombstones older than TombstoneTTL that
// no peer still waits for.
func (s *Syncer) collectTombstones(ctx context.Context, now time.Time) {
	entries, err := os.ReadDir(filepath.Join(s.Module.Path, deletedDir))
	if err != nil {
		s.fail(fmt.Errorf("reading the tombstones: %w", err))
		return
	}
	collected := 0
	for _, e := range entries {
		name := deletedDir + "/" + e.Name()
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) <= s.TombstoneTTL || s.queuedTombstone(name) {
			continue
		}
		if err := os.Remove(filepath.Join(s.Module.Path, name)); err == nil {
			collected++
		}
	}
	if collected > 0 {
		logr.FromContextOrDiscard(ctx).V(1).Info("Collected tombstones", "directory", s.Module.Path, "count", collected)
		s.mu.Lock()
		s.status.TombstonesCollected += collected
		s.mu.Unlock()
	}
}

// sendTombstones queues every tombstone for the peers that rejoined: they
// were left out of the queues while away, and judge each on arrival.
func (s *Syncer) sendTombstones() {
	s.mu.Lock()
	rejoined := s.rejoined
	s.rejoined = map[string]bool{}
	s.mu.Unlock()
	if len(rejoined) == 0 {
		return
	}
	entries, err := os.ReadDir(filepath.Join(s.Module.Path, deletedDir))
	if err != nil {
		s.fail(fmt.Errorf("reading the tombstones: %w", err))
		return
	}
	now := s.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range rejoined {
		box := s.outbox[name]
		if box == nil {
			box = map[string]time.Time{}
			s.outbox[name] = box
		}
		for _, e := range entries {
			if _, ok := box[deletedDir+"/"+e.Name()]; !ok {
				box[deletedDir+"/"+e.Name()] = now
			}
		}
	}
}

// queuedTombstone tells whether the tombstone, or the deletion it
// records, still waits for a peer.
func (s *Syncer) queuedTombstone(name string) bool {
	path, err := url.PathUnescape(strings.TrimPrefix(name, deletedDir+"/"))
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queued(name) || (err == nil && s.queued(path))
}

// dropUnshared removes, at the catch-up of a front away too long, what
// it alone holds and has not changed since before deletions are
// remembered: it may hold files deleted meanwhile whose tombstones are
// collected, and sending them would bring them back. A deletion seen at D
// is collected after D+TTL by a clock at most ClockSkew off, so a path
// whose status changed here (ctime) after now-TTL+ClockSkew changed after
// any collected deletion, and is sent as this front's own. A version
// dropped before is dropped again whatever its ctime: a catch-up that did
// not match pulls again, and brings it back, new inode and all, from a
// peer away as long that has not dropped it yet.
func (s *Syncer) dropUnshared(ctx context.Context, onlyHere []string) {
	horizon := s.Clock.Now().Add(-s.TombstoneTTL + s.ClockSkew)
	stale := map[string]os.FileInfo{}
	for _, path := range onlyHere {
		st, err := os.Lstat(filepath.Join(s.Module.Path, path))
		if err != nil {
			continue
		}
		was, dropped := s.dropped[path]
		again := dropped && was == stampOf(st)
		sys, ok := st.Sys().(*syscall.Stat_t)
		if again || (ok && time.Unix(sys.Ctim.Unix()).Before(horizon)) {
			stale[path] = st
		}
	}
	if s.dropped == nil {
		s.dropped = map[string]stamp{}
	}
	// Deepest first: a directory goes once what it holds is gone.
	paths := sortedKeys(stale)
	slices.Reverse(paths)
	for _, path := range paths {
		if !s.remove(ctx, path, filepath.Join(s.Module.Path, path), s.Rsync.Self, stale[path]) {
			// Changed since it was found: no longer the old version.
			continue
		}
		logr.FromContextOrDiscard(ctx).Info("Dropped an upload no peer holds, unchanged since before deletions are remembered",
			"path", filepath.Join(s.Module.Path, path))
		as := stampOf(stale[path])
		if was, ok := s.dropped[path]; ok && was == as {
			continue
		}
		s.dropped[path] = as
		s.mu.Lock()
		s.status.Dropped++
		s.mu.Unlock()
	}
}

// onlyHere is what every peer lacks, of what peerLacks lists for each.
func onlyHere(peerLacks [][]string) []string {
	if len(peerLacks) == 0 {
		return nil
	}
	count := map[string]int{}
	for _, lacks := range peerLacks {
		for _, p := range lacks {
			if p != MetaDir && !strings.HasPrefix(p, MetaDir+"/") {
				count[p]++
			}
		}
	}
	var out []string
	for p, n := range count {
		if n == len(peerLacks) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}
