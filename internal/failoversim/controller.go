package failoversim

import (
	"strconv"
	"time"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/controllers"
)

// controller models controllers.FailoverIPReconciler around the real Elect
// and the real HeartbeatTracker: Lease sightings by its own clock, a
// workqueue that runs one reconcile at a time, wake-ups at the instant
// time alone may change the result, and a status write that is a
// compare-and-swap on the resourceVersion its cache last saw. A restart
// forgets the tracker and the cache.
type controller struct {
	w   *World
	clk *driftClock

	up        bool
	inc       int
	tracker   *controllers.HeartbeatTracker
	witnesses *controllers.Witnesses
	cache     *apiState
	// queued: a reconcile is scheduled; busy: a status write is in flight;
	// dirty: an event came while busy.
	queued, busy, dirty bool
	failures            int
	wakeAt              time.Time
	wakeSeq             int
	// fronts is the last election's input fronts, reused: Elect keeps
	// nothing of its input. named caches the names of each set of fronts
	// (names).
	fronts []controllers.ElectionFront
	named  map[uint64][]string
}

// names are the fronts of the set unheard, in order; the same slice for
// the same set, which Elect only reads.
func (c *controller) names(unheard uint64) []string {
	if unheard == 0 {
		return nil
	}
	if n, ok := c.named[unheard]; ok {
		return n
	}
	var n []string
	for i, name := range c.w.cfg.Nodes {
		if unheard&(1<<i) != 0 {
			n = append(n, name)
		}
	}
	if c.named == nil {
		c.named = map[uint64][]string{}
	}
	c.named[unheard] = n
	return n
}

func newController(w *World, clk *driftClock) *controller {
	return &controller{w: w, clk: clk}
}

// start starts a new controller process: empty tracker, empty cache.
func (c *controller) start() {
	c.up = true
	c.inc++
	c.tracker = controllers.NewHeartbeatTracker(c.clk)
	c.witnesses = controllers.NewWitnesses(c.clk)
	c.cache, c.queued, c.busy, c.dirty, c.failures, c.wakeSeq = nil, false, false, false, 0, 0
	c.w.api.list(ctrlParty, c)
}

// stop kills the controller process (its successor starts with start).
func (c *controller) stop() {
	c.up = false
	c.inc++
}

// proc binds fn to this controller process: it runs only if the process
// that scheduled it still runs.
func (c *controller) proc(fn func()) func() {
	inc := c.inc
	return func() {
		if c.up && c.inc == inc {
			fn()
		}
	}
}

func (c *controller) afterLocal(d time.Duration, fn func()) {
	c.w.at(c.clk.globalAt(c.clk.Now().Add(d)), "", c.proc(fn))
}

// watch is a watch event or a list: the informers' cache catches up, and
// the Lease, FailoverIP and FrontNode handlers enqueue as theirs do
// (controllers/watches.go, failoverip_watches.go).
func (c *controller) watch(s *apiState) {
	if !c.up {
		return
	}
	prev := c.cache
	c.cache = s
	c.tracker.NoteDeadtime(webfarmv1.PresenceWindow(s.spec.Timing.Deadtime))
	enqueue := prev == nil || prev.spec.Generation != s.spec.Generation
	for i, l := range s.leases {
		if l.rv == 0 || (prev != nil && prev.leases[i].rv == l.rv) {
			continue
		}
		name := c.w.cfg.Nodes[i]
		if c.observeLease(name, l) && (c.tracker.Revived(name, webfarmv1.PresenceWindow(s.spec.Timing.Deadtime)) || name == s.status.Owner) {
			// An owner's renewal is acknowledged in the status.
			enqueue = true
		}
	}
	for i, f := range s.fronts {
		if prev != nil && prev.fronts[i] != f {
			enqueue = true
		}
	}
	if enqueue {
		c.enqueue()
	}
}

// observeLease feeds one Lease sighting to the tracker, as watchLeases does:
// a Lease that names another holder shows nothing (leaseRenewal).
func (c *controller) observeLease(node string, l lease) bool {
	if l.holder != node {
		return false
	}
	return c.tracker.Observe(node, strconv.FormatInt(l.rv, 10))
}

func (c *controller) enqueue() {
	switch {
	case c.busy:
		c.dirty = true
	case !c.queued:
		c.queued = true
		c.w.after(0, c.proc(c.reconcile))
	}
}

// reconcile is FailoverIPReconciler.Reconcile: elect, schedule the next
// wake-up, write the status if it changed.
func (c *controller) reconcile() {
	c.queued = false
	if c.cache == nil {
		return
	}
	in := c.electionInput()
	res := controllers.Elect(in)
	if d := nextElection(in, res); d > 0 {
		c.wakeAfter(d)
	}
	want := fipStatus{Ownership: res.Ownership, Candidates: res.Candidates, Voters: res.Voters, OwnerRenewal: res.OwnerRenewal, WitnessCounted: true}
	if res.Epoch == c.cache.status.Epoch {
		// ownershipStatus: a witness proves its epoch only.
		want.Witness = c.cache.status.Witness
	}
	want.publishTiming(c.cache.spec)
	if want.equal(c.cache.status) {
		return
	}
	c.write(c.cache.fipRV, want, res)
}

func (c *controller) electionInput() controllers.ElectionInput {
	s := c.cache
	in := controllers.ElectionInput{
		Key: fipKey, Now: c.clk.Now(),
		Deadtime: s.spec.Timing.Deadtime, Guard: s.spec.Timing.Guard,
		Presence:      webfarmv1.PresenceWindow(s.spec.Timing.Deadtime),
		PreferredNode: s.spec.PreferredNode, AutoFailback: s.spec.AutoFailback,
		Current: s.status.Ownership, Voters: s.status.Voters, Generation: s.spec.Generation,
		Fronts: c.fronts[:0],
	}
	for i, name := range c.w.cfg.Nodes {
		at, heard := c.tracker.LastAlive(name)
		f := controllers.ElectionFront{
			Name: name, Selected: true, Draining: s.fronts[i].draining, OutOfService: s.fronts[i].outOfService,
			Heard: heard, LastAlive: at, LeaseVersion: c.tracker.Seen(name),
		}
		f.OutOfServiceFor = c.tracker.OutOfServiceFor(name, f.OutOfService)
		r := s.fronts[i].report
		if r.some && (r.state == webfarmv1.VIPReleased || r.state == webfarmv1.VIPFenced) {
			f.ReleasedEpoch = r.epoch
		}
		if r.some && r.state == webfarmv1.VIPOwnerUnheard {
			f.UnheardEpoch, f.UnheardAfter = r.epoch, r.unheardAfter
		}
		if r.some && r.state == webfarmv1.VIPHolding {
			f.HoldingEpoch = r.epoch
		}
		f.UnheardFronts = c.names(r.unheard)
		// ownerReport and reportedGeneration.
		if name == in.Current.Owner && r.some && r.epoch == in.Current.Epoch && r.state == webfarmv1.VIPHolding {
			in.OwnerGeneration, in.OwnerHolding = r.generation, true
		}
		in.Fronts = append(in.Fronts, f)
	}
	c.witnesses.Witnessed(fipName, webfarmv1.FailoverIPStatus{Owner: s.status.Owner, Epoch: s.status.Epoch, OwnerWitness: s.status.Witness}, in.Fronts)
	c.fronts = in.Fronts
	return in
}

// nextElection is the controller's nextElection: Elect's RequeueAfter, or
// the first candidate heartbeat to turn stale.
func nextElection(in controllers.ElectionInput, res controllers.ElectionResult) time.Duration {
	next := res.RequeueAfter
	for _, f := range in.Fronts {
		if !f.Heard {
			continue
		}
		if d := f.LastAlive.Add(in.Presence).Sub(in.Now); d > 0 && (next <= 0 || d < next) {
			next = d
		}
	}
	return next
}

// wakeAfter is the wakeups source: of two pending wake-ups the earlier wins.
func (c *controller) wakeAfter(d time.Duration) {
	now := c.clk.Now()
	at := now.Add(d)
	if c.wakeSeq > 0 && c.wakeAt.After(now) && !c.wakeAt.After(at) {
		return
	}
	c.wakeSeq++
	seq := c.wakeSeq
	c.wakeAt = at
	c.afterLocal(d, func() {
		if c.wakeSeq == seq {
			c.wakeSeq = 0
			c.enqueue()
		}
	})
}

// write is the status Update at the resourceVersion the cache saw. A
// conflict or a timeout requeues with the workqueue's exponential backoff
// (5ms doubling, capped here at one second).
func (c *controller) write(rv int64, want fipStatus, res controllers.ElectionResult) {
	c.busy = true
	done := false
	finish := func(ok bool) {
		if done {
			return
		}
		done, c.busy = true, false
		if ok {
			c.failures = 0
		} else {
			c.w.tracef("controller: the write failed (conflict or timeout)")
			c.failures++
			c.afterLocal(backoff(c.failures), c.enqueue)
		}
		if c.dirty {
			c.dirty = false
			c.enqueue()
		}
	}
	if c.w.cfg.Trace {
		c.w.tracef("controller writes owner=%q epoch=%d released=%v releaseRequested=%v candidates=%v voters=%v fencing deadtime %v (%s)",
			want.Owner, want.Epoch, want.PreviousOwnerReleased, want.ReleaseRequested, want.Candidates, want.Voters, want.Timing.Deadtime, res.Reason)
	}
	c.w.net.call(ctrlParty, func() func() {
		ok := c.w.api.updateStatus(rv, want)
		return c.proc(func() { finish(ok) })
	})
	c.afterLocal(c.w.cfg.CallTimeout, func() { finish(false) })
}

func backoff(failures int) time.Duration {
	d := 5 * time.Millisecond << min(failures-1, 10)
	return min(d, time.Second)
}
