package uploads

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// settle handles a path no event touched for the quiet period: a peer's
// write or deletion is judged, a local change is given the declared owner and mode
// and queued for every peer, a local deletion gets its tombstone.
func (s *Syncer) settle(ctx context.Context, path string, first time.Time) {
	defer s.forgetSettled(path)
	if s.judgeArrivals(ctx, path) {
		return
	}
	abs := filepath.Join(s.Module.Path, path)
	st, err := os.Lstat(abs)
	if err == nil && s.ownAttributes(path, stampOf(st)) {
		return
	}
	s.mu.Lock()
	received, wasReceived := s.received[path]
	delete(s.received, path)
	// A deletion seen made here is this front's, whatever a peer
	// deleted before it.
	_, removedHere := s.removed[path]
	deleted := s.receivedDel[path] && !removedHere
	delete(s.receivedDel, path)
	s.mu.Unlock()
	logr.FromContextOrDiscard(ctx).V(1).Info("Settled", "path", path, "exists", err == nil, "received", wasReceived, "deleted", deleted)
	switch {
	case err == nil && wasReceived && received == stampOf(st):
		return
	case err == nil && st.Mode().IsRegular() && s.stillWritten(path, abs):
		return
	case err == nil:
		s.enforce(ctx, path, abs, st)
		if st, err = os.Lstat(abs); err == nil {
			s.queue(path, first, stampOf(st))
		}
	case !errors.Is(err, os.ErrNotExist):
		s.fail(fmt.Errorf("reading %s: %w", abs, err))
	case deleted:
		return
	default:
		s.deletedHere(path, first)
	}
}

// stillWritten tells whether a process holds path open for writing, and
// then has it wait, as open, for its writer to close it. inotify tells of
// a write once the write(2) returned: a path that settled on an earlier
// event while a process was writing a large file into its name went out
// half written (TestNodeUploadsRandomTrial).
func (s *Syncer) stillWritten(path, abs string) bool {
	if written, known := openForWriting(abs); !known || !written {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending.touch(path, s.Clock.Now(), false)
	s.pending.opened(path)
	return true
}

// deletedHere records the deletion of path made here, seen at first, and
// queues it, with its tombstone, for every peer.
func (s *Syncer) deletedHere(path string, first time.Time) {
	if err := s.writeTombstone(path, first); err != nil {
		s.fail(err)
		return
	}
	if st, err := os.Lstat(filepath.Join(s.Module.Path, tombstoneName(path))); err == nil {
		s.queue(tombstoneName(path), first, stampOf(st))
	}
	s.queue(path, first, gone)
}

// recordUnsettledRemovals writes the tombstone of each file deleted here
// whose deletion has not settled: a Syncer stopped within the quiet
// period after a deletion (an agent restarted) forgot it, and its
// catch-up brought the file back from the peers. The catch-up sends the
// tombstones.
func (s *Syncer) recordUnsettledRemovals() {
	s.mu.Lock()
	removed := maps.Clone(s.removed)
	s.mu.Unlock()
	for path, at := range removed {
		if _, err := os.Lstat(filepath.Join(s.Module.Path, path)); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if tomb, ok := s.tombstone(path); ok && tomb.MtimeNs >= at.UnixNano() {
			continue
		}
		if err := s.writeTombstone(path, at); err != nil {
			s.fail(err)
		}
	}
}

// removal is the deletion of path by a process here, not settled yet,
// as a version to weigh, with when it was seen; nil without one.
func (s *Syncer) removal(path string) (*candidate, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.removed[path]
	if !ok {
		return nil, time.Time{}
	}
	return &candidate{v: Version{MtimeNs: at.UnixNano(), Deleted: true}}, at
}

// forgetRemoval drops the deletion of path by a process here: a verdict
// recorded it.
func (s *Syncer) forgetRemoval(path string) {
	s.mu.Lock()
	delete(s.removed, path)
	s.mu.Unlock()
}

// forgetSettled drops what was noted of path's local changes (its
// deletion, its write in place) once it settled, unless it is to be
// judged again.
func (s *Syncer) forgetSettled(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, again := s.pending[path]; !again {
		delete(s.removed, path)
		delete(s.inPlace, path)
	}
}

// enforce gives a local file or directory the declared owner and mode,
// and records the path as it then is: the attribute events this causes
// carry no change (ownAttributes).
func (s *Syncer) enforce(ctx context.Context, path, abs string, st os.FileInfo) {
	m := s.Module
	mode := m.FileMode.Perm()
	if st.IsDir() {
		mode = m.DirMode.Perm()
	}
	var err error
	if !m.owns(st) {
		err = os.Lchown(abs, int(m.UID), int(m.GID))
	} else if st.Mode()&os.ModeSymlink != 0 || st.Mode().Perm() == mode {
		return
	}
	if st.Mode()&os.ModeSymlink == 0 {
		err = errors.Join(err, chmodIf(abs, st, mode))
	}
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Setting the declared owner and mode", "path", abs)
	}
	s.mu.Lock()
	s.enforced[path] = enforcement{stampOf(st), s.Clock.Now()}
	s.mu.Unlock()
}

// owns tells whether st has the module's owner and group.
func (m Module) owns(st os.FileInfo) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && int64(sys.Uid) == m.UID && int64(sys.Gid) == m.GID
}

// enforcement is a path as enforce left it, and when.
type enforcement struct {
	as stamp
	at time.Time
}

// ownAttributes tells whether every event of a settled path changed
// attributes only, and the path's size and time are still what enforce
// left shortly before: the agent's own chown and chmod.
func (s *Syncer) ownAttributes(path string, now stamp) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	attrOnly := s.attrOnly[path]
	delete(s.attrOnly, path)
	e, ok := s.enforced[path]
	return attrOnly && ok && e.as == now && !e.at.Before(s.Clock.Now().Add(-enforcedEvents*s.Quiet))
}

// forgetEnforced drops the enforcements whose events have all arrived.
func (s *Syncer) forgetEnforced() {
	s.mu.Lock()
	defer s.mu.Unlock()
	since := s.Clock.Now().Add(-enforcedEvents * s.Quiet)
	for p, e := range s.enforced {
		if e.at.Before(since) {
			delete(s.enforced, p)
		}
	}
}

// enforcedEvents, in quiet periods, is how long after enforce the
// attribute events it caused may still arrive.
const enforcedEvents = 10

func chmodIf(abs string, st os.FileInfo, mode os.FileMode) error {
	if st.Mode().Perm() == mode {
		return nil
	}
	return os.Chmod(abs, mode)
}

// writeTombstone records the deletion of path, dated when it was seen.
func (s *Syncer) writeTombstone(path string, at time.Time) error {
	abs := filepath.Join(s.Module.Path, tombstoneName(path))
	if err := os.WriteFile(abs, []byte(s.Rsync.Self+"\n"), s.Module.FileMode.Perm()); err != nil {
		return fmt.Errorf("recording the deletion of %s: %w", path, err)
	}
	_ = os.Lchown(abs, int(s.Module.UID), int(s.Module.GID))
	return os.Chtimes(abs, at, at)
}

// gone is the stamp of a path deleted here.
var gone = stamp{mtimeNs: -1, size: -1}

// queue adds path, as it was when it settled, to every peer's outbox.
func (s *Syncer) queue(path string, first time.Time, as stamp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settledAs[path] = as
	for _, p := range s.peers {
		box := s.outbox[p.Name]
		if box == nil {
			box = map[string]time.Time{}
			s.outbox[p.Name] = box
		}
		if t, ok := box[path]; !ok || first.Before(t) {
			box[path] = first
		}
	}
}

// pushOutboxes starts, for every peer without one under way, a push of
// its outbox in one rsync, and does not wait for it: the loop goes on
// settling changes meanwhile, and the push's end wakes it to send at once
// what settled. One push at a time per peer keeps a path's versions in
// order; a slow peer holds up neither the others nor the settling. A peer
// that failed keeps its outbox and is retried Retry later.
func (s *Syncer) pushOutboxes(ctx context.Context) {
	s.dropReplaced()
	now := s.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.peers {
		box := s.outbox[p.Name]
		if _, busy := s.sending[p.Name]; busy || len(box) == 0 || now.Sub(s.failed[p.Name]) < s.Retry {
			continue
		}
		s.sending[p.Name], s.outbox[p.Name] = box, map[string]time.Time{}
		s.pushes.Add(1)
		go func() {
			defer s.pushes.Done()
			err := s.push(ctx, p, box)
			if err == nil {
				s.startAhead(ctx, p)
			}
			s.finishPush(ctx, p, box, err)
			s.poke()
		}()
	}
}

// push sends box to peer, with the push started ahead if one is ready.
// One that fails is tried once more from the start: its connection may
// have died while it waited (the peer's daemon restarted), which rsync
// learns only once it is used.
func (s *Syncer) push(ctx context.Context, peer Peer, box map[string]time.Time) error {
	if ready := s.takeReady(peer); ready != nil {
		err := s.pushFrom(ready, box)
		if err == nil {
			return nil
		}
		logr.FromContextOrDiscard(ctx).V(1).Info("A push started ahead failed; starting it again", "peer", peer.Name, "error", err.Error())
	}
	p, err := s.startPush(ctx, peer)
	if err != nil {
		return err
	}
	return s.pushFrom(p, box)
}

// pushFrom sends box through p from a snapshot of its paths, and ends p.
// The paths left out of the snapshot are taken out of box: no longer what
// settled here, they come back by themselves (dropReplaced).
func (s *Syncer) pushFrom(p *startedPush, box map[string]time.Time) error {
	defer p.close()
	s.mu.Lock()
	paths := sortedKeys(box)
	s.mu.Unlock()
	left, linked, err := s.snapshot(p.root, paths)
	defer unlinkSnapshot(p.root, linked)
	if err != nil {
		return err
	}
	s.mu.Lock()
	for _, path := range left {
		delete(box, path)
	}
	send := sortedKeys(box)
	s.mu.Unlock()
	return p.send(send)
}

// dropReplaced takes out of the outboxes every path that is no longer what
// settled here: rsync reads the file as it is, and a peer's version that
// landed meanwhile must not go out under this front's name. What replaced
// it comes back by itself: a local write settles again, a peer's version
// is judged, and a local version put back is queued again.
func (s *Syncer) dropReplaced() {
	s.mu.Lock()
	want := copyMap(s.settledAs)
	s.mu.Unlock()
	var stale []string
	for path, as := range want {
		now := gone
		if st, err := os.Lstat(filepath.Join(s.Module.Path, path)); err == nil {
			now = stampOf(st)
		}
		if now != as {
			stale = append(stale, path)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, path := range stale {
		delete(s.settledAs, path)
		for _, box := range s.outbox {
			delete(box, path)
		}
	}
}

// finishPush ends the push of paths to peer. What failed goes back to the
// peer's outbox, unless the peer left meanwhile: it catches up by itself
// when it comes back.
func (s *Syncer) finishPush(ctx context.Context, peer Peer, paths map[string]time.Time, err error) {
	now := s.Clock.Now()
	var latencies []time.Duration
	s.mu.Lock()
	delete(s.sending, peer.Name)
	if err != nil {
		s.failed[peer.Name] = now
		s.status.LastError = fmt.Sprintf("pushing to %s: %v", peer.Name, err)
		if box, ok := s.outbox[peer.Name]; ok {
			for p, first := range paths {
				if t, queued := box[p]; !queued || first.Before(t) {
					box[p] = first
				}
			}
		}
	} else {
		delete(s.failed, peer.Name)
		s.status.Pushed += len(paths)
		for _, first := range paths {
			latencies = append(latencies, now.Sub(first))
		}
		if len(s.failed) == 0 {
			s.status.LastError = ""
		}
	}
	for path := range s.settledAs {
		if !s.queued(path) {
			delete(s.settledAs, path)
		}
	}
	s.mu.Unlock()
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Pushing uploads", "peer", peer.Name, "directory", s.Module.Path)
	} else {
		logr.FromContextOrDiscard(ctx).V(1).Info("Pushed", "peer", peer.Name, "paths", len(paths))
	}
	if s.Propagated != nil {
		for _, l := range latencies {
			s.Propagated(l)
		}
	}
}

func copyMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
