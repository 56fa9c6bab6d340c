package uploads

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
)

// Peer is another front of the farm.
type Peer struct {
	Name string
	Addr netip.Addr
}

// Status is how far one directory is synced on this front.
type Status struct {
	// CaughtUp is true once the directory matched every peer that
	// answered at the last catch-up.
	CaughtUp bool
	// Pending counts the local changes not yet on every peer.
	Pending int
	// Oldest is when the oldest of them happened; zero with none.
	Oldest time.Time
	// LastError is the last failure, cleared by the next success.
	LastError string
	// Conflicts counts the versions that lost to another (Wins).
	Conflicts int
	// Pushed counts the paths this front sent to a peer.
	Pushed int
	// TombstonesCollected counts the deletions forgotten (collect.go).
	TombstonesCollected int
	// Dropped counts the files dropped at a catch-up after an absence
	// longer than TombstoneTTL (collect.go).
	Dropped int
	// LostEvents counts the times inotify's queue overflowed: each
	// costs a catch-up.
	LostEvents int
}

// Defaults of a Syncer.
const (
	// DefaultQuiet is how long a path must see no event before it is
	// propagated, unless its last event ended a write (completeQuiet) or
	// left a file open for writing (openQuiet).
	DefaultQuiet = 100 * time.Millisecond
	// DefaultRetry paces the retries towards a peer that failed, and
	// of a catch-up that did not match.
	DefaultRetry = time.Second
)

// Syncer keeps one directory identical on this front and its peers: it
// pushes the changes made here, judges what peers send (the daemon's
// transfer log, given to Received), and catches up before it reports the
// directory caught up.
type Syncer struct {
	Module Module
	Rsync  *Rsync
	Clock  clock.Clock
	Quiet  time.Duration
	Retry  time.Duration
	// Drain, when set, is called before local changes settle, so that
	// what peers sent has been given to Received, and the daemon's
	// sessions writing into the directory to receiving, first (no
	// bounce).
	Drain func()
	// Propagated, when set, is told how long each change took to reach
	// a peer.
	Propagated func(time.Duration)
	// TombstoneTTL is how long a deletion is remembered; ClockSkew the
	// most the fronts' clocks may differ (collect.go).
	TombstoneTTL, ClockSkew time.Duration

	mu    sync.Mutex
	peers []Peer
	// peersSet is false until the first SetPeers; rejoined are the peers
	// added since, to be sent every tombstone.
	peersSet bool
	rejoined map[string]bool
	pending  pending
	// outbox holds, per peer, the settled paths it still lacks, with
	// when each first changed; sending, those of the push under way to
	// it, at most one per peer (push.go).
	outbox, sending map[string]map[string]time.Time
	// pushes counts the pushes and probes under way, which Run waits for.
	pushes sync.WaitGroup
	// settledAs is each queued path as it settled (gone: deleted).
	settledAs map[string]stamp
	// failed is when a peer last failed; it is retried Retry later.
	failed map[string]time.Time
	// inbox holds the peers' transfers not yet read.
	inbox []Transfer
	// unlanded are transfers logged before rsync renamed their file into
	// the staging directory, tried again at the next steps: the loop's
	// own.
	unlanded []Transfer
	// writing are the daemon's sessions writing into the tree itself,
	// and staging those writing into staging directories, as of the last
	// read of its log (Router.Drain). Only the first may have put a file
	// in the tree that no transfer names yet (mayBeLocal).
	writing, staging map[int]bool
	// waiting are the settled paths no transfer named yet, each with the
	// sessions that were writing when it settled: it is a peer's if one
	// of them logs it, this front's once they all ended without.
	waiting map[string]wait
	// incoming holds, per path, what peers did to it, judged once the
	// path settles: rsync logs a file before it puts it in place.
	incoming map[string][]arrival
	// kept lists what peers' transfers set aside (kept.go): the loop's
	// own, read afresh at every step, after every pull and when old.
	kept *keptIndex
	// dropped are the versions dropped at the catch-up of an absence
	// longer than TombstoneTTL (collect.go), until this front is in step
	// again: the loop's own.
	dropped map[string]stamp
	// received and receivedDel are what peers wrote and deleted here, so
	// that the watcher does not send them back.
	received    map[string]stamp
	receivedDel map[string]bool
	// removed holds the files deleted or renamed away by a process here,
	// each with when that was seen, until the path settles: a peer's
	// version that lands meanwhile is weighed against the deletion
	// (judge), which otherwise, not yet recorded, would be lost to it.
	removed map[string]time.Time
	// inPlace holds the files last written into their own name here,
	// not renamed into place, until they settle: whatever transfer
	// landed before, their content is this front's (judgeArrivals).
	inPlace map[string]bool
	// attrOnly are the pending paths whose events all changed attributes
	// only; enforced is each local path's stamp after the agent set its
	// owner and mode, and when, so that the events this causes are not
	// taken for a change.
	attrOnly map[string]bool
	enforced map[string]enforcement
	status   Status
	// catchUp is set while a catch-up is due.
	catchUp bool
	// collectAt is when the tombstones are next collected and the peers
	// next asked whether this front is still one of theirs.
	collectAt time.Time
	// sweepAt is when the versions set aside are next looked through;
	// zero when no transfer arrived since the last look (sweep.go).
	sweepAt time.Time
	// outOfStep is set when a peer refused this front, until a catch-up.
	outOfStep bool
	// probing is set while the peers are asked whether this front is
	// still one of theirs; probed holds their answers until the loop
	// acts on them (collect.go).
	probing bool
	probed  *probeResult
	// caughtUpAt is when the last catch-up ended.
	caughtUpAt time.Time
	wake       chan struct{}
	once       sync.Once
	// touchedDue is when the earliest path touched since the loop last
	// looked settles.
	touchedDue time.Time
	// beforeVerdict, when set (tests), is called between weighing a
	// path's versions and carrying out the verdict: where a transfer
	// that lands meanwhile is replayed.
	beforeVerdict func(path string)
	// ready holds the pushes started ahead (ready.go).
	ready readyPushes
}

// wait is a settled path waiting for sessions' log lines, since when.
type wait struct {
	first, since time.Time
	sessions     []int
}

// heldBy tells whether one of the sessions waited for is still writing.
func (w wait) heldBy(writing map[int]bool) bool {
	return slices.ContainsFunc(w.sessions, func(pid int) bool { return writing[pid] })
}

// completeQuiet divides the quiet period for a path whose last event
// ended a write (close_write, moved_to): it is complete, and goes once no
// other event followed for that long (pending), 2 ms by default. lsyncd
// sends such a file at once; the short wait keeps with it a time set right
// after (tar and curl -R call utimes next). At 10 ms, a single change
// reached both peers in 35 ms against lsyncd's 17; at 2 ms in 15 against
// 14 (make bench-sync, quiet machine).
const completeQuiet = 50

// soon is how long a complete path waits for another event.
func (s *Syncer) soon() time.Duration { return s.Quiet / completeQuiet }

// maxWait, in quiet periods, is the longest a settled path waits for the
// sessions that were writing: a peer's catch-up sends its whole tree in
// one session, and a local upload must not wait for all of it. A peer's
// file whose line comes later still is sent back, and judged there like
// any other version.
const maxWait = 30

type stamp struct{ mtimeNs, size int64 }

func stampOf(st os.FileInfo) stamp { return stamp{st.ModTime().UnixNano(), st.Size()} }

func (s *Syncer) init() {
	s.once.Do(func() {
		s.pending = pending{}
		s.outbox, s.sending, s.failed = map[string]map[string]time.Time{}, map[string]map[string]time.Time{}, map[string]time.Time{}
		s.settledAs = map[string]stamp{}
		s.received, s.receivedDel, s.removed = map[string]stamp{}, map[string]bool{}, map[string]time.Time{}
		s.inPlace = map[string]bool{}
		s.incoming = map[string][]arrival{}
		s.writing, s.staging, s.waiting = map[int]bool{}, map[int]bool{}, map[string]wait{}
		s.attrOnly, s.enforced = map[string]bool{}, map[string]enforcement{}
		s.rejoined = map[string]bool{}
		s.ready.byPeer, s.ready.starting = map[string]*readyPush{}, map[string]chan struct{}{}
		s.wake = make(chan struct{}, 1)
		s.catchUp = true
		if s.Clock == nil {
			s.Clock = clock.RealClock{}
		}
		if s.Quiet <= 0 {
			s.Quiet = DefaultQuiet
		}
		if s.Retry <= 0 {
			s.Retry = DefaultRetry
		}
		if s.TombstoneTTL <= 0 {
			s.TombstoneTTL = DefaultTombstoneTTL
		}
		if s.ClockSkew <= 0 {
			s.ClockSkew = DefaultClockSkew
		}
	})
}

// SetPeers sets the fronts to keep in step with. A peer that leaves loses
// its queue: when it comes back it catches up by itself.
func (s *Syncer) SetPeers(peers []Peer) {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	known := map[string]bool{}
	for _, p := range s.peers {
		known[p.Name] = true
	}
	keep := map[string]bool{}
	for _, p := range peers {
		keep[p.Name] = true
		// A front that comes back may have missed deletions while it
		// was left out: it is sent every tombstone (collect.go).
		if s.peersSet && !known[p.Name] {
			s.rejoined[p.Name] = true
		}
	}
	s.peers, s.peersSet = append([]Peer(nil), peers...), true
	for name := range s.outbox {
		if !keep[name] {
			delete(s.outbox, name)
			delete(s.failed, name)
		}
	}
	s.poke()
}

// Received queues a transfer the daemon logged for this directory.
func (s *Syncer) Received(t Transfer) {
	s.init()
	s.mu.Lock()
	s.inbox = append(s.inbox, t)
	s.mu.Unlock()
	s.poke()
}

// receiving records the daemon's sessions writing into the directory now:
// into the tree itself (peers from before staging), and into staging
// directories. A path that waited for sessions all now ended settles at
// once: the loop is woken rather than left to its next look (mayBeLocal).
func (s *Syncer) receiving(intoTree, intoStaging []int) {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.writing)
	for _, pid := range intoTree {
		s.writing[pid] = true
	}
	clear(s.staging)
	for _, pid := range intoStaging {
		s.staging[pid] = true
	}
	for _, w := range s.waiting {
		if !w.heldBy(s.writing) {
			s.poke()
			return
		}
	}
}

// RequestCatchUp asks for a catch-up, as after a lost inotify event.
func (s *Syncer) RequestCatchUp() {
	s.init()
	s.mu.Lock()
	s.catchUp, s.status.CaughtUp = true, false
	s.mu.Unlock()
	s.poke()
}

func (s *Syncer) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Status reports the directory's sync.
func (s *Syncer) Status() Status {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	oldest := s.pending.oldest()
	paths := map[string]bool{}
	for p := range s.pending {
		paths[p] = true
	}
	for p, w := range s.waiting {
		paths[p] = true
		if oldest.IsZero() || w.first.Before(oldest) {
			oldest = w.first
		}
	}
	for _, boxes := range []map[string]map[string]time.Time{s.outbox, s.sending} {
		for _, box := range boxes {
			for p, first := range box {
				paths[p] = true
				if oldest.IsZero() || first.Before(oldest) {
					oldest = first
				}
			}
		}
	}
	st.Pending, st.Oldest = len(paths), oldest
	return st
}

// Run watches and syncs the directory until ctx is done.
func (s *Syncer) Run(ctx context.Context) error {
	s.init()
	if err := s.prepare(); err != nil {
		return err
	}
	w, err := newWatcher(s.Module.Path)
	if err != nil {
		return err
	}
	defer w.close()
	// ctx is done: the pushes under way end with their rsync, and so do
	// those started ahead.
	defer s.stopReady()
	defer s.pushes.Wait()
	// Events are taken as they come, beside the loop: a step that
	// settles thousands of paths (whose own chown and chmod raise two
	// events each) left the kernel's queue (16,384 events by default) to
	// overflow, and every lost event cost a whole catch-up.
	touched, watching := make(chan struct{}, 1), make(chan struct{})
	go func() {
		defer close(watching)
		s.watch(ctx, w, touched)
	}()
	defer func() { <-watching }()
	t := &wakeTimer{timer: s.Clock.NewTimer(time.Hour), clock: s.Clock}
	defer t.timer.Stop()
	for {
		s.step(ctx, w)
		t.set(s.nextDue())
		// Events only mark paths; the step runs when one may have
		// settled, so that a burst of events costs one step, not one
		// per event.
		for stepped := false; !stepped; {
			select {
			case <-ctx.Done():
				s.recordUnsettledRemovals()
				return nil
			case <-touched:
				s.mu.Lock()
				at := s.touchedDue
				s.touchedDue = time.Time{}
				s.mu.Unlock()
				if !at.IsZero() {
					t.setBefore(at)
				}
			case <-s.wake:
				stepped = true
			case <-t.timer.C():
				t.at, stepped = time.Time{}, true
			}
		}
	}
}

// watch marks the paths the watcher's events name until ctx is done, and
// tells the loop through touched.
func (s *Syncer) watch(ctx context.Context, w *watcher, touched chan<- struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.events:
			if !ok {
				return
			}
			s.event(ctx, w, ev)
			select {
			case touched <- struct{}{}:
			default:
			}
		case err, ok := <-w.errors:
			if !ok {
				return
			}
			s.fail(fmt.Errorf("watching %s: %w", s.Module.Path, err))
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// A whole catch-up: said, for it holds up the changes
				// that follow.
				logr.FromContextOrDiscard(ctx).Info("Lost inotify events, catching up", "directory", s.Module.Path)
				s.mu.Lock()
				s.status.LostEvents++
				s.mu.Unlock()
				s.RequestCatchUp()
			}
		}
	}
}

// wakeTimer is the Syncer's one timer, set to the next thing due.
type wakeTimer struct {
	timer clock.Timer
	clock clock.Clock
	at    time.Time
}

// set arms the timer for at; a zero at disarms it.
func (t *wakeTimer) set(at time.Time) {
	if !t.timer.Stop() {
		select {
		case <-t.timer.C():
		default:
		}
	}
	t.at = at
	if at.IsZero() {
		return
	}
	t.timer.Reset(max(at.Sub(t.clock.Now()), time.Millisecond))
}

// setBefore arms the timer for at unless it fires sooner.
func (t *wakeTimer) setBefore(at time.Time) {
	if t.at.IsZero() || at.Before(t.at) {
		t.set(at)
	}
}

func (s *Syncer) event(ctx context.Context, w *watcher, ev event) {
	paths, err := w.changed(ev)
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Watching a new directory", "directory", s.Module.Path)
		s.RequestCatchUp()
	}
	// What a new directory holds was found, not written now: a file is
	// whole unless a process still writes it.
	found := make([]struct{ complete, open bool }, len(paths))
	for i := 1; i < len(paths); i++ {
		found[i].complete, found[i].open = foundState(filepath.Join(s.Module.Path, paths[i]))
	}
	removed := removedHere(w, ev)
	now := s.Clock.Now()
	s.mu.Lock()
	if _, seen := s.removed[removed]; removed != "" && !seen {
		s.removed[removed] = now
	}
	for i, p := range paths {
		_, was := s.pending[p]
		switch {
		case ev.Op != fsnotify.Chmod:
			delete(s.attrOnly, p)
		case !was:
			s.attrOnly[p] = true
		}
		if i == 0 {
			s.noteInPlace(p, ev)
			s.pending.touch(p, now, ev.complete)
			s.pending.writing(p, ev)
			s.pending.made(p, ev)
		} else {
			s.pending.touch(p, now, found[i].complete)
			s.pending.found(p)
			if found[i].open {
				s.pending.opened(p)
			}
		}
		s.touchedDue = earliest(s.touchedDue, s.pending[p].wake(s.Quiet, s.soon()))
	}
	var ahead []Peer
	if len(paths) > 0 && ev.writing {
		ahead = s.reachablePeers(now)
	}
	s.mu.Unlock()
	// A file is being written here: a push is likely soon, and its rsync
	// connects meanwhile. Not for other events: the daemon writes what
	// peers send aside and renames it into place, and a push started
	// ahead on every front that receives was never used, and its
	// retirement, a session into its peer, held the peer's local changes
	// (mayBeLocal): 100 ms each, 431 ms at most (make bench-sync).
	for _, p := range ahead {
		s.startAhead(ctx, p)
	}
}

// noteInPlace records whether path's file was last written into its own
// name: a write in place marks it, any other change of its content (a
// rename into place, a deletion) clears it. Changes of attributes leave
// it as it was.
func (s *Syncer) noteInPlace(path string, ev event) {
	switch {
	case ev.inPlace:
		s.inPlace[path] = true
	case ev.Op != fsnotify.Chmod:
		delete(s.inPlace, path)
	}
}

// removedHere is the file that a process here deleted or renamed away,
// if ev tells of one.
func removedHere(w *watcher, ev event) string {
	name := ev.movedFrom
	if ev.removedHere {
		name = ev.Name
	}
	if name == "" {
		return ""
	}
	rel, _ := w.rel(name)
	return rel
}

// reachablePeers are the peers not waiting to be retried.
func (s *Syncer) reachablePeers(now time.Time) []Peer {
	var peers []Peer
	for _, p := range s.peers {
		if now.Sub(s.failed[p.Name]) >= s.Retry {
			peers = append(peers, p)
		}
	}
	return peers
}

// step does what is due: judge what peers sent, catch up, settle the
// local changes and push them.
func (s *Syncer) step(ctx context.Context, w *watcher) {
	if s.Drain != nil {
		s.Drain()
	}
	s.takeInbox(ctx)
	s.sendTombstones()
	s.mu.Lock()
	// A catch-up waits for the pushes under way: its own transfers to a
	// peer must not race one of them.
	due := s.catchUp && len(s.sending) == 0 && s.Clock.Since(s.failed[""]) >= s.Retry
	s.mu.Unlock()
	if due && s.runCatchUp(ctx) {
		// Watch what the catch-up wrote, and what appeared while the
		// watch was being set up.
		if _, err := w.addTree(s.Module.Path); err != nil {
			s.fail(err)
		}
	}
	s.kept = nil
	s.lookForWriters()
	s.mu.Lock()
	settled := s.mayBeLocal(s.pending.settled(s.Clock.Now(), s.Quiet, s.soon()))
	s.mu.Unlock()
	for _, p := range sortedKeys(settled) {
		s.settle(ctx, p, settled[p])
	}
	s.forgetEnforced()
	s.sweep()
	s.pushOutboxes(ctx)
	s.collect(ctx)
	s.renewEmptyMaps()
}

// renewEmptyMaps replaces, once empty, the maps of paths that every step
// or push ranges over. A Go map keeps the room it once needed, and
// ranging over it costs that room, not what it holds: the 100,000 files
// found at start-up, all settled, left pending a map whose ranging took a
// quarter of the Syncers' CPU under 20 uploads/s.
func (s *Syncer) renewEmptyMaps() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = renewedIfEmpty(s.pending)
	s.waiting = renewedIfEmpty(s.waiting)
	s.settledAs = renewedIfEmpty(s.settledAs)
	s.enforced = renewedIfEmpty(s.enforced)
	s.removed = renewedIfEmpty(s.removed)
	s.inPlace = renewedIfEmpty(s.inPlace)
}

// renewedIfEmpty returns a new map if m is empty, else m.
func renewedIfEmpty[M ~map[K]V, K comparable, V any](m M) M {
	if len(m) == 0 {
		return M{}
	}
	return m
}

// lookForWriters looks, for each file still open for writing whose writer
// has been silent for a quiet period, whether a process still holds it
// open: one that none does is complete, and settles in this step.
func (s *Syncer) lookForWriters() {
	s.mu.Lock()
	silent := s.pending.silent(s.Clock.Now(), s.Quiet)
	s.mu.Unlock()
	for path, last := range silent {
		written, known := openForWriting(filepath.Join(s.Module.Path, path))
		s.mu.Lock()
		s.pending.looked(path, last, s.Clock.Now(), written, known)
		s.mu.Unlock()
	}
}

// mayBeLocal returns, of the paths that settled and those waiting, the
// ones that can be settled now, with when each first changed: a path a
// transfer names is a peer's; a path written here in place is this
// front's; any other path none names yet waits while a session that was
// writing into the directory when it settled goes on, for that session
// may log it later, for maxWait at most. New sessions do not prolong the
// wait.
func (s *Syncer) mayBeLocal(changes map[string]change) map[string]time.Time {
	settled := map[string]time.Time{}
	for path, c := range changes {
		// Not held: a change of attributes alone, which the daemon logs
		// itself, at once (its generator makes them); a write into the
		// name, which the daemon never makes (it writes aside and
		// renames into place). Held, such writes waited for the end of
		// the sessions, logged 20-50 ms after their last file is in
		// place (rsync polls its children's exit every 20 ms): uploads
		// at 20/s on two fronts each waited for the other's pushes (p99
		// 56-72 ms).
		if _, named := s.incoming[path]; named || len(s.writing) == 0 || s.attrOnly[path] || c.writtenHere() {
			settled[path] = c.first
			continue
		}
		w := wait{first: c.first, since: s.Clock.Now()}
		for pid := range s.writing {
			w.sessions = append(w.sessions, pid)
		}
		s.waiting[path] = w
	}
	for path, w := range s.waiting {
		if _, again := s.pending[path]; again {
			// Touched again, by an event or a transfer: it settles anew.
			delete(s.waiting, path)
			continue
		}
		_, named := s.incoming[path]
		if named || !w.heldBy(s.writing) ||
			s.Clock.Since(w.since) >= maxWait*s.Quiet {
			settled[path] = w.first
			delete(s.waiting, path)
		}
	}
	return settled
}

// nextDue is when the next thing is due: a path settling, a peer or a
// catch-up to retry. An idle directory has none: no wake-up at all. What
// waits for a push under way is due when it ends, which wakes the loop.
func (s *Syncer) nextDue() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.pending.next(s.Quiet, s.soon())
	if len(s.unlanded) > 0 {
		next = earliest(next, s.Clock.Now().Add(landRetry))
	}
	if len(s.waiting) > 0 {
		// The end of the sessions they wait for wakes the loop when the
		// Router follows the log (Router.Follow); this look finds a
		// session that died without its last line, and the longest wait.
		next = earliest(next, s.Clock.Now().Add(s.Quiet))
	}
	for name, box := range s.outbox {
		if _, busy := s.sending[name]; len(box) > 0 && !busy {
			next = earliest(next, s.failed[name].Add(s.Retry))
		}
	}
	if s.catchUp {
		if len(s.sending) == 0 {
			next = earliest(next, s.failed[""].Add(s.Retry))
		}
	} else {
		next = earliest(next, s.collectAt)
	}
	return earliest(next, s.sweepAt)
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// fail records err as the last error.
func (s *Syncer) fail(err error) {
	s.mu.Lock()
	s.status.LastError = err.Error()
	s.mu.Unlock()
}

// prepare creates the directory and the agent's own below it, owned by
// the declared owner: the daemon writes as that owner.
func (s *Syncer) prepare() error {
	m := s.Module
	if err := os.MkdirAll(m.Path, m.DirMode.Perm()); err != nil {
		return fmt.Errorf("creating %s: %w", m.Path, err)
	}
	// A push's snapshot is removed when it ends, and what peers sent is
	// put in place as it lands: what a process that died left goes now.
	// A version staged and not put in place is fetched again by the
	// catch-up that every start runs.
	for _, d := range []string{pushDir, inDir, pulledDir} {
		if err := os.RemoveAll(filepath.Join(m.Path, d)); err != nil {
			return fmt.Errorf("clearing %s: %w", d, err)
		}
	}
	for _, d := range []string{"", MetaDir, tmpDir, replacedDir, deletedDir, pushDir, inDir} {
		p := filepath.Join(m.Path, d)
		if err := os.MkdirAll(p, m.DirMode.Perm()); err != nil {
			return fmt.Errorf("creating %s: %w", p, err)
		}
		if err := os.Lchown(p, int(m.UID), int(m.GID)); err != nil {
			return fmt.Errorf("owning %s: %w", p, err)
		}
	}
	return nil
}
