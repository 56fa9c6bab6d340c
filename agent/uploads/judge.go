package uploads

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
)

// arrival is what a peer did to a path: written or deleted.
type arrival struct {
	op     Op
	sender string
}

// takeInbox puts in place what peers pushed (land.go) and files their
// transfers by path, to be judged when the path settles (judgeArrivals).
// A transfer rsync logged before it renamed its file into the staging
// directory is tried again at the next steps, while its session goes on.
// A peer from before staging wrote into the tree itself: rsync's daemon
// logs a file before it moves the version it replaces aside and renames
// the new one into place, and the rename's event comes after.
func (s *Syncer) takeInbox(ctx context.Context) {
	s.mu.Lock()
	inbox := append(s.unlanded, s.inbox...)
	s.inbox, s.unlanded = nil, nil
	byAddr := map[string]string{}
	for _, p := range s.peers {
		byAddr[p.Addr.String()] = p.Name
	}
	staging := maps.Clone(s.staging)
	s.mu.Unlock()
	type filed struct {
		path string
		arrival
	}
	var arrived []filed
	for _, t := range inbox {
		sender, ok := byAddr[t.Peer.String()]
		if !ok {
			sender = t.Peer.String()
		}
		if t.Dest == "" {
			arrived = append(arrived, filed{t.Path, arrival{t.Op, sender}})
			continue
		}
		sender, changed := s.landTransfer(ctx, t, staging)
		for _, path := range changed {
			arrived = append(arrived, filed{path, arrival{OpRecv, sender}})
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Clock.Now()
	for _, a := range arrived {
		s.incoming[a.path] = append(s.incoming[a.path], a.arrival)
		s.pending.touch(a.path, now, false)
	}
	if len(arrived) > 0 {
		s.sweepSoon()
	}
}

// judgeArrivals decides, for a path that settled, which version stays
// (Wins), and reports whether a peer had a hand in it. rsync sets the
// versions a transfer replaced, or deleted, aside (kept.go): the best of
// them and the path's own is put back. A version set aside that no
// arrival names (its rename came after the arrival was judged) is judged
// too.
func (s *Syncer) judgeArrivals(ctx context.Context, path string) bool {
	s.mu.Lock()
	arrivals := s.incoming[path]
	delete(s.incoming, path)
	overwritten := s.inPlace[path]
	s.mu.Unlock()
	if overwritten && s.dropOverwritten(ctx, path) {
		return false
	}
	// The first logged arrivals are the transfer log's; those after
	// them are made up from the versions set aside.
	logged := len(arrivals)
	named := map[string]bool{}
	for _, a := range arrivals {
		named[a.sender] = true
	}
	op := OpRecv
	if _, err := os.Lstat(filepath.Join(s.Module.Path, path)); err != nil {
		op = OpDel
	}
	for _, sender := range s.keptNow().replacedBy(path) {
		if !named[sender] {
			arrivals = append(arrivals, arrival{op, sender})
		}
	}
	for i, a := range arrivals {
		if !s.judge(ctx, a.op, path, a.sender) {
			// A version landed while the path was weighed: the path is
			// judged again, with the logged transfers left to judge
			// (replacedBy finds the others again, as they are then).
			s.mu.Lock()
			s.incoming[path] = append(s.incoming[path], arrivals[min(i+1, logged):logged]...)
			s.mu.Unlock()
			break
		}
	}
	return len(arrivals) > 0
}

// dropOverwritten removes the versions that peers' transfers set aside
// at path, and tells whether it did: a process here has since written
// into the file in place, over what landed last, and every version before
// it is older. Judged, the file would be taken for the peer's that it
// overwrote, and not sent.
//
// It does only when the file at path beats each of them. inotify reports
// a write under the name its file was opened by, also once a transfer
// renamed a peer's version over that name: the writer's version is then
// the one set aside (rsync's backup is a hard link to it), the newest,
// and it was removed for good (TestNodeUploadsRandomTrial). Judged, it
// is put back and sent.
func (s *Syncer) dropOverwritten(ctx context.Context, path string) bool {
	abs := filepath.Join(s.Module.Path, path)
	st, err := os.Lstat(abs)
	if err != nil {
		return false
	}
	current := fileCandidate(abs, st)
	kept := s.keptNow()
	var older []string
	for _, sender := range kept.replacedBy(path) {
		for _, k := range kept.versions(sender, path) {
			if st, err := os.Lstat(k); err == nil && fileCandidate(k, st).beats(current) {
				return false
			}
			older = append(older, k)
		}
	}
	if len(older) > 0 {
		logr.FromContextOrDiscard(ctx).V(1).Info("Written in place since: dropping what was set aside", "path", path, "dropped", older)
	}
	removeAll(older)
	return true
}

// judge weighs what sender's transfers did to path: the path as it is,
// its tombstone and every version those transfers set aside. The best
// one stays; the others set aside are removed. It reports false when a
// version landed at the path while it weighed: nothing of it is lost, and
// the path is judged again (verdict.go).
func (s *Syncer) judge(ctx context.Context, op Op, path, sender string) bool {
	kept := s.keptNow().versions(sender, path)
	if strings.HasPrefix(path, deletedDir+"/") {
		s.keepNewestTombstone(path, kept)
		s.judgeTombstone(ctx, path, sender)
		return true
	}
	if path == MetaDir || strings.HasPrefix(path, MetaDir+"/") {
		return true
	}
	abs := filepath.Join(s.Module.Path, path)
	logr.FromContextOrDiscard(ctx).V(1).Info("Judging", "op", op, "path", path, "from", sender, "replaced", len(kept))
	w, ok := s.weigh(ctx, op, path, abs, kept)
	if !ok {
		return true
	}
	if slices.ContainsFunc(kept, beingWritten) {
		// A write in place was under way when a transfer set its file
		// aside (dropOverwritten): judged now, it would be put back
		// half written and sent, or removed as older than it will be.
		// The path waits for its writer, as a local file does.
		s.rejudge(ctx, path, abs)
		return false
	}
	best := w.incoming
	for _, c := range w.rivals {
		if c.beats(best) {
			best = c
		}
	}
	if log := logr.FromContextOrDiscard(ctx).V(1); log.Enabled() {
		log.Info("Judged", "path", path, "from", sender, "incoming", w.incoming.v, "rivals", describeCandidates(w.rivals), "kept", best.abs)
	}
	removeAll(slices.DeleteFunc(kept, func(k string) bool { return k == best.abs }))
	if s.beforeVerdict != nil {
		s.beforeVerdict(path)
	}
	switch {
	case best == w.incoming:
		s.accept(ctx, path, abs, sender, w.incoming.v, w.weighed)
	case best.abs == "":
		if !s.remove(ctx, path, abs, sender, w.weighed) {
			return false
		}
	default:
		return s.restore(ctx, path, abs, best.abs, sender, w.weighed)
	}
	if best == w.removal {
		s.deletedHere(path, w.removedAt)
		s.forgetRemoval(path)
	}
	return true
}

// keepNewestTombstone keeps the newest of a tombstone that landed and
// those it replaced (kept), and removes the others. A front that catches
// up sends every tombstone it holds: an older deletion of a path that
// replaced a newer one let a version written between the two come back.
func (s *Syncer) keepNewestTombstone(path string, kept []string) {
	abs := filepath.Join(s.Module.Path, path)
	for _, k := range kept {
		old, err := os.Lstat(k)
		if err != nil {
			continue
		}
		cur, err := os.Lstat(abs)
		if err == nil && !old.ModTime().After(cur.ModTime()) {
			_ = os.Remove(k)
			continue
		}
		if err != nil {
			cur = nil
		}
		// What it displaced is at k; what landed meanwhile stays
		// there, for the next tombstone of the path to weigh.
		if displaced, err := swapIn(k, abs, cur); err == nil && displaced {
			_ = os.Remove(k)
		}
	}
}

// weighing is what a judgment weighs: what the peer's transfer left at
// the path (a file, or a deletion), the versions it competes with, and
// the path as it was weighed (nil when absent).
type weighing struct {
	incoming *candidate
	rivals   []*candidate
	weighed  os.FileInfo
	// removal is this front's own deletion of the path, not yet
	// settled, seen at removedAt: a version that landed after it is
	// weighed against it.
	removal   *candidate
	removedAt time.Time
}

// weigh gathers what a judgment of path weighs: the path's tombstone and
// this front's deletion against what landed, and the versions set aside
// (kept). It reports false when there is nothing to judge.
func (s *Syncer) weigh(ctx context.Context, op Op, path, abs string, kept []string) (weighing, bool) {
	w := weighing{incoming: &candidate{v: Version{MtimeNs: s.Clock.Now().UnixNano(), Deleted: true}}}
	tomb, hasTomb := s.tombstone(path)
	w.removal, w.removedAt = s.removal(path)
	if op == OpRecv {
		cur, err := os.Lstat(abs)
		switch {
		case err == nil && cur.IsDir():
			s.rememberDir(ctx, path, abs, cur)
			return w, false
		case err == nil:
			w.weighed = cur
			w.incoming = fileCandidate(abs, cur)
		case w.removal == nil:
			return w, false
		default:
			// Deleted here since it landed: weighed as this
			// front's deletion.
			op = OpDel
		}
	}
	switch op {
	case OpRecv:
		if hasTomb {
			// A version older than the path's deletion: a front
			// that missed the deletion does not bring it back.
			w.rivals = append(w.rivals, &candidate{v: tomb})
		}
		if w.removal != nil {
			w.rivals = append(w.rivals, w.removal)
		}
	case OpDel:
		if hasTomb {
			w.incoming.v = tomb
		}
		// Deleted here after the peer's version landed: the
		// deletion is this front's, to record and send.
		if w.removal != nil && (!hasTomb || Wins(w.removal.v, tomb)) {
			w.incoming = w.removal
		}
	}
	for _, k := range kept {
		if st, err := os.Lstat(k); err == nil {
			w.rivals = append(w.rivals, fileCandidate(k, st))
		}
	}
	return w, true
}

func removeAll(paths []string) {
	for _, p := range paths {
		_ = os.Remove(p)
	}
}

// restore puts back the version a peer's worse one replaced, and queues
// it for every peer as a local change: the peers may hold the loser. It
// reports false when what it displaced is not the version weighed
// (swapIn).
func (s *Syncer) restore(ctx context.Context, path, abs, backup, sender string, weighed os.FileInfo) bool {
	_ = os.MkdirAll(filepath.Dir(abs), s.Module.DirMode.Perm())
	displaced, err := swapIn(backup, abs, weighed)
	if err != nil {
		s.fail(err)
		return true
	}
	if !displaced {
		s.rejudge(ctx, path, abs)
		return false
	}
	_ = os.Remove(backup)
	logr.FromContextOrDiscard(ctx).Info("Kept the better version of an upload", "path", abs, "lost", sender)
	s.mu.Lock()
	s.status.Conflicts++
	delete(s.received, path)
	s.mu.Unlock()
	// Queued at once: left to settle again, the path's next arrival
	// would be judged with this version in place, taken for the peer's,
	// and it would never be sent.
	if st, err := os.Lstat(abs); err == nil {
		s.queue(path, s.Clock.Now(), stampOf(st))
	}
	return true
}

// rejudge has path judged again: a version landed there while it was
// weighed, and was left where the next judgment finds it.
func (s *Syncer) rejudge(ctx context.Context, path, abs string) {
	logr.FromContextOrDiscard(ctx).V(1).Info("A version landed while judged: judging again", "path", abs)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending.touch(path, s.Clock.Now(), false)
}

// accept takes the peer's version, weighed as it was. A local change it
// replaced, settled but not yet sent, lost: counted and logged, and no
// longer sent. A version that landed since, or a deletion made since, is
// not taken for received: it settles on its own.
func (s *Syncer) accept(ctx context.Context, path, abs, sender string, v Version, weighed os.FileInfo) {
	st, err := os.Lstat(abs)
	if weighed != nil && (err != nil || !sameVersion(st, weighed)) {
		// Gone since, or replaced: by a process here, whose change
		// settles on its own, or by a peer, whose transfer is judged.
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.queued(path) && s.settledAs[path] == stampOf(st) {
		// The version weighed is the one this front sends (restored by
		// an earlier verdict): it stays this front's.
		return
	}
	if s.queued(path) {
		delete(s.pending, path)
		for _, box := range s.outbox {
			delete(box, path)
		}
		if err != nil || !st.IsDir() {
			s.status.Conflicts++
			logr.FromContextOrDiscard(ctx).Info("A newer version of an upload replaced this front's", "path", abs, "from", sender)
		}
	}
	if v.Deleted || err != nil {
		s.receivedDel[path] = true
		delete(s.received, path)
		return
	}
	s.received[path] = stampOf(st)
	delete(s.receivedDel, path)
}

// queued tells whether path waits for a peer: in an outbox, or in a push
// under way.
func (s *Syncer) queued(path string) bool {
	for _, boxes := range []map[string]map[string]time.Time{s.outbox, s.sending} {
		for _, box := range boxes {
			if _, ok := box[path]; ok {
				return true
			}
		}
	}
	return false
}

// rememberDir takes a directory that a transfer named for the peer's,
// unless the daemon did not make it: rsync's daemon writes as the
// module's owner, and only sets the mode and times of a directory that
// exists. One owned otherwise was made here, as a peer's file for it
// landed, and gets the declared owner now: taken for the peer's, it kept
// its owner, and the daemon could write nothing into it for good.
func (s *Syncer) rememberDir(ctx context.Context, path, abs string, st os.FileInfo) {
	if !s.Module.owns(st) {
		s.enforce(ctx, path, abs, st)
		return
	}
	s.remember(path, st)
}

func (s *Syncer) remember(path string, st os.FileInfo) {
	s.mu.Lock()
	s.received[path] = stampOf(st)
	s.mu.Unlock()
}

// remove deletes a path that a deletion beat; a directory only once
// empty (what it holds has its own tombstones). It reports false when
// the path is not as weighed: a version landed there meanwhile.
func (s *Syncer) remove(ctx context.Context, path, abs, sender string, weighed os.FileInfo) bool {
	switch {
	case weighed == nil:
		// Absent when weighed: whatever is there now landed since.
		if _, err := os.Lstat(abs); err == nil {
			s.rejudge(ctx, path, abs)
			return false
		}
	case weighed.IsDir():
		// rmdir, not remove: a file that landed there stays.
		if err := unix.Rmdir(abs); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return true
		}
	default:
		aside, err := s.keptSlot(sender, path)
		if err != nil {
			s.fail(err)
			return true
		}
		ok, err := takeAside(abs, aside, weighed)
		if err != nil {
			s.fail(err)
			return true
		}
		if !ok {
			s.rejudge(ctx, path, abs)
			return false
		}
		_ = os.Remove(aside)
	}
	s.mu.Lock()
	s.receivedDel[path] = true
	delete(s.received, path)
	s.mu.Unlock()
	s.removeDeletedParent(ctx, path, sender)
	return true
}

// removeDeletedParent applies the deletion of path's directory, which
// path's removal may have emptied (and so on up, through remove): a peer
// that removed a tree sends a tombstone for each file and directory,
// judged in any order, and a directory judged before its files stayed,
// empty, for good.
func (s *Syncer) removeDeletedParent(ctx context.Context, path, sender string) {
	dir := filepath.Dir(path)
	if dir == "." {
		return
	}
	if _, ok := s.tombstone(dir); ok {
		s.judgeTombstone(ctx, tombstoneName(dir), sender)
	}
}

// judgeTombstone applies a received tombstone to the path it names. A
// version that landed there meanwhile is left for the path's own
// judgment (remove).
func (s *Syncer) judgeTombstone(ctx context.Context, marker, sender string) {
	path, err := url.PathUnescape(strings.TrimPrefix(marker, deletedDir+"/"))
	if err != nil {
		return
	}
	tomb, ok := s.tombstone(path)
	if !ok {
		return
	}
	abs := filepath.Join(s.Module.Path, path)
	cur, err := os.Lstat(abs)
	if err != nil {
		return
	}
	if cur.IsDir() || Wins(tomb, Version{MtimeNs: cur.ModTime().UnixNano()}) {
		logr.FromContextOrDiscard(ctx).V(1).Info("Applying a deletion", "path", abs)
		s.remove(ctx, path, abs, sender, cur)
	}
}

// Tombstones: a deletion is a file below .webfarm/deleted/, named after
// the path it deleted, dated when the deletion was seen and holding the
// node that saw it. They are synced like files, so that a front that
// missed a deletion learns it at its catch-up.
func tombstoneName(path string) string { return deletedDir + "/" + url.PathEscape(path) }

// tombstone reads the deletion of path, if any.
func (s *Syncer) tombstone(path string) (Version, bool) {
	abs := filepath.Join(s.Module.Path, tombstoneName(path))
	st, err := os.Lstat(abs)
	if err != nil {
		return Version{}, false
	}
	return Version{MtimeNs: st.ModTime().UnixNano(), Deleted: true}, true
}

// describeCandidates names each version judged, file and time, for the
// log.
func describeCandidates(cs []*candidate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s@%d", c.abs, c.v.MtimeNs))
	}
	return out
}
