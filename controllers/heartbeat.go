package controllers

import (
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/utils/clock"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// nodeOfLease returns the node whose heartbeat Lease is called name.
func nodeOfLease(name string) (string, bool) {
	node, ok := strings.CutPrefix(name, webfarmv1.NodeLeasePrefix)
	return node, ok && node != ""
}

// leaseRenewal identifies the last renewal of node's Lease by node's agent:
// its renewTime, compared only for equality, never as a time (it comes from
// another machine's clock). ok is false when the Lease names another holder
// or none, or was never renewed: then nothing in it shows that node's agent
// alive, whoever changed it (issue 9, finding 7).
func leaseRenewal(l *coordinationv1.Lease, node string) (version string, ok bool) {
	spec := l.Spec
	if spec.HolderIdentity == nil || *spec.HolderIdentity != node || spec.RenewTime == nil {
		return "", false
	}
	return webfarmv1.LeaseRenewalVersion(spec.RenewTime.Time), true
}

// HeartbeatTracker remembers, by the controller's own clock, when the
// controller last saw each node's agent renew its Lease (leaseRenewal). It
// never reads the timestamps written in the Lease as times: they come from
// another machine's clock. It is fed by the Lease watch and safe for
// concurrent use.
//
// Blindness. When the controller sees no Lease change at all for blindAfter
// (the longest deadtime of the FailoverIPs; longer than any keepalive), it
// cannot tell a farm whose every front died at once from its own loss of the
// API server, or a watch that has not caught up after an outage: it then
// counts every node as alive now, and, once Leases change again, as alive
// from then on — so that it never fences an owner for a silence it could not
// have heard, and each node gets a full deadtime to be seen renewing again.
type HeartbeatTracker struct {
	clock  clock.PassiveClock
	origin time.Time

	mu   sync.Mutex
	seen map[string]sighting
	// lastAny is the last change seen of any Lease; resumed is when changes
	// were seen again after blindness.
	lastAny, resumed time.Time
	blindAfter       time.Duration
	// taintedSince is when the tracker first saw each node's Node carry
	// the out-of-service taint, without a break since (OutOfServiceFor).
	taintedSince map[string]time.Time
}

// defaultBlindAfter is the silence of every Lease that means blindness when
// no FailoverIP says longer: the default deadtime.
const defaultBlindAfter = 2 * time.Second

type sighting struct {
	version string
	at      time.Time
	// silence is how long the Lease had been silent before this sighting;
	// wasLive tells whether the sighting before was of a live Lease.
	silence time.Duration
	wasLive bool
}

// NewHeartbeatTracker returns an empty tracker; nodes it has not seen yet
// count as last alive when it was created.
func NewHeartbeatTracker(c clock.PassiveClock) *HeartbeatTracker {
	return &HeartbeatTracker{clock: c, origin: c.Now(), seen: map[string]sighting{}, blindAfter: defaultBlindAfter,
		taintedSince: map[string]time.Time{}}
}

// OutOfServiceFor records whether node's Node carries the out-of-service
// taint now, and returns how long the tracker has seen it carry the taint
// without a break: zero at the first sighting, or when it does not. The
// operator says the node is shut down, not since when: whatever it
// promised just before may still let an owner hold, for up to a deadtime
// (ElectionFront.OutOfServiceFor). A controller that restarts waits again.
func (t *HeartbeatTracker) OutOfServiceFor(node string, tainted bool) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !tainted {
		delete(t.taintedSince, node)
		return 0
	}
	now := t.clock.Now()
	since, ok := t.taintedSince[node]
	if !ok {
		t.taintedSince[node] = now
		return 0
	}
	return now.Sub(since)
}

// Observe records that node's Lease is at version (its renewal, see
// leaseRenewal; "" once deleted). It reports whether that is news: a first
// sighting or a change. A first sighting counts as a renewal: the controller
// cannot tell how old it is, and a live agent renews it within one keepalive
// anyway. A deletion is no renewal: the node was last alive when it was last
// seen renewing.
func (t *HeartbeatTracker) Observe(node, version string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	prev, ok := t.seen[node]
	if ok && prev.version == version {
		return false
	}
	now := t.clock.Now()
	if !t.lastAny.IsZero() && now.Sub(t.lastAny) >= t.blindAfter {
		t.resumed = now
	}
	t.lastAny = now
	at := now
	if version == "" {
		at = prev.at
		if !ok {
			at = t.origin
		}
	}
	t.seen[node] = sighting{version: version, at: at, silence: now.Sub(prev.at), wasLive: ok && prev.version != ""}
	return true
}

// Seen is the version of node's Lease the tracker saw last; "" when none
// or deleted.
func (t *HeartbeatTracker) Seen(node string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seen[node].version
}

// Revived reports whether node's latest sighting may have changed its
// freshness under deadtime: a first sighting, a deletion, or a renewal after
// a silence of deadtime or more. A renewal within deadtime of the previous
// one changes nothing a reconciler has not already scheduled. The answer
// depends only on the latest sighting, so every watcher of the Lease gets the
// same one whichever calls Observe first.
func (t *HeartbeatTracker) Revived(node string, deadtime time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.seen[node]
	return !ok || s.version == "" || !s.wasLive || s.silence >= deadtime
}

// LastAlive returns the last instant node is known to have been alive: when
// the controller last saw its agent renew its Lease. heard is false when it
// never saw the Lease, or saw it deleted. When it never saw it, the instant
// is when the tracker started, the latest the node may have renewed it
// unseen; after a deletion, its last renewal seen: a live agent creates the
// Lease again at its next renewal.
func (t *HeartbeatTracker) LastAlive(node string) (at time.Time, heard bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	floor := t.resumed
	if now := t.clock.Now(); !t.lastAny.IsZero() && now.Sub(t.lastAny) >= t.blindAfter {
		floor = now
	}
	s, ok := t.seen[node]
	if !ok {
		return latest(t.origin, floor), false
	}
	if s.version == "" {
		return s.at, false
	}
	return latest(s.at, floor), true
}

// NoteDeadtime makes sure blindness is judged over at least d, a FailoverIP's
// deadtime: its candidates renew more often than that.
func (t *HeartbeatTracker) NoteDeadtime(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.blindAfter = max(t.blindAfter, d)
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// heartbeat is one front's liveness as judged by the controller.
type heartbeat struct {
	// heard: the controller has seen the node's Lease.
	heard bool
	// lastAlive: when the controller last saw the Lease change.
	lastAlive time.Time
}

// freshAt reports whether the heartbeat is fresh at now: heard, and seen
// changing less than deadtime ago.
func (h heartbeat) freshAt(now time.Time, deadtime time.Duration) bool {
	return h.heard && now.Sub(h.lastAlive) < deadtime
}

// staleAt is when the heartbeat stops being fresh.
func (h heartbeat) staleAt(deadtime time.Duration) time.Time {
	return h.lastAlive.Add(deadtime)
}

func (t *HeartbeatTracker) heartbeat(node string) heartbeat {
	at, heard := t.LastAlive(node)
	return heartbeat{heard: heard, lastAlive: at}
}

// frontDeadtimes remembers the deadtime each front is judged by, so that the
// Lease watch can tell a renewal that revives a front from a routine one.
type frontDeadtimes struct {
	mu sync.Mutex
	m  map[string]time.Duration
}

func newFrontDeadtimes() *frontDeadtimes {
	return &frontDeadtimes{m: map[string]time.Duration{}}
}

func (d *frontDeadtimes) set(node string, deadtime time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m[node] = deadtime
}

func (d *frontDeadtimes) forget(node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.m, node)
}

// get is node's deadtime; zero when unknown, so that any renewal counts.
func (d *frontDeadtimes) get(node string) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.m[node]
}
