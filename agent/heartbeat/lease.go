package heartbeat

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// DefaultInterval is the renewal interval when Interval is nil or returns
// zero: the one docs/architecture.md gives a node that is no candidate.
const DefaultInterval = 500 * time.Millisecond

// intervalPoll bounds how long a change of Interval goes unnoticed: it is
// the shortest keepalive the API accepts. A node that becomes a candidate of
// a FailoverIP with a short keepalive must not sleep out a long one first.
const intervalPoll = 100 * time.Millisecond

// LeaseRenewer keeps the node Lease webfarm-node-<node> (coordination.k8s.io/v1)
// in Namespace: holderIdentity is the node, renewTime the start of the last
// renewal by Clock.
type LeaseRenewer struct {
	// Client reaches the API server directly (no cache).
	Client    client.Client
	Namespace string
	Node      string
	// Interval is the current renewal interval; it may change at runtime
	// and is read again at least every 100ms, and at once after Wake.
	// DefaultInterval when nil or zero.
	Interval func() time.Duration
	// Duration is written as leaseDurationSeconds (rounded up to a whole
	// second): how long the Lease counts as held without renewal. The agent
	// passes its smallest deadtime. Four intervals when nil or zero. The
	// controller judges liveness by its own clock and deadtime, so this is
	// for people and other tools reading the Lease.
	Duration func() time.Duration
	// Clock is the real clock when nil.
	Clock clock.Clock

	// asap asks for a renewal at once, whatever the interval (RenewNow).
	asap atomic.Bool

	mu   sync.Mutex
	wake chan struct{}
	last time.Time
	// recent are the latest successful renewals, newest last, by the
	// version the API server stored (webfarmv1.LeaseRenewalVersion).
	recent []renewal
	// lease is the Lease as the last successful write left it, so that a
	// renewal takes one request; nil after a failure, to read it again.
	lease *coordinationv1.Lease
}

// maxAttempt bounds one renewal attempt, and the wait after a failed one,
// however long the interval: a quiet renewal that hangs must not hold back
// the renewals an owner needs every keepalive, nor a quiet front stay
// unrenewed for a whole QuietLeaseInterval after one failure.
const maxAttempt = 2 * time.Second

// minAttempt is the least an attempt is given, however short the
// interval: on a loaded machine a write takes a few hundred milliseconds,
// and an attempt cut at four fifths of a 100-200 ms keepalive never
// succeeded, for seconds on end, while the one that would have landed
// still proved the node alive from its start (and present to the
// controller). An attempt in flight only delays the next one.
const minAttempt = time.Second

// AttemptTimeout bounds a renewal attempt at interval: four fifths of it,
// at least minAttempt and at most maxAttempt.
func AttemptTimeout(interval time.Duration) time.Duration {
	return min(max(interval*4/5, minAttempt), maxAttempt)
}

// RetryAfter is when, after its start, a failed attempt at interval is
// tried again: at the next interval, or after maxAttempt if sooner.
func RetryAfter(interval time.Duration) time.Duration { return min(interval, maxAttempt) }

// Run renews the Lease every Interval until ctx is done, creating it when it
// is missing. Each attempt is bounded (AttemptTimeout), and a failed attempt
// is retried at RetryAfter: never a longer backoff, so the first renewal
// after an API outage comes at most maxAttempt after the API server is
// back.
func (r *LeaseRenewer) Run(ctx context.Context) {
	log := logr.FromContextOrDiscard(ctx).WithValues("lease", r.key())
	var failingSince time.Time
	for {
		start := r.clock().Now()
		interval := r.interval()
		err := r.renewWithin(ctx, start, AttemptTimeout(interval))
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			r.setLast(start)
			if !failingSince.IsZero() {
				log.Info("Renewed node Lease again", "after", r.clock().Since(failingSince).String())
				failingSince = time.Time{}
			}
		case failingSince.IsZero():
			// Only the first failure of an outage: one line per interval
			// would flood the log while the API server is away.
			failingSince = start
			log.Error(err, "Could not renew node Lease")
		}
		if !r.waitNext(ctx, start, err != nil) {
			return
		}
	}
}

// Wake makes a waiting renewer read Interval again at once, rather than at
// its next poll: an owner that just lost its peers' confirmations needs
// its Lease now.
func (r *LeaseRenewer) Wake() {
	select {
	case r.wakeChan() <- struct{}{}:
	default:
	}
}

// RenewNow asks for one renewal at once, or as soon as the attempt in
// flight is over, whatever the interval: a front that reports its owner
// unheard may be named owner next, and then needs a fresh Lease.
func (r *LeaseRenewer) RenewNow() {
	r.asap.Store(true)
	r.Wake()
}

func (r *LeaseRenewer) wakeChan() chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.wake == nil {
		r.wake = make(chan struct{}, 1)
	}
	return r.wake
}

// renewal is one successful renewal: what the API server stored, and when
// it started by Clock.
type renewal struct {
	version string
	start   time.Time
}

// recentRenewals bounds how many renewals Started remembers: an
// acknowledgement older than that proves nothing any more anyway.
const recentRenewals = 32

// Started is when the successful renewal the API server stored as version
// started, by Clock; zero when it is not one of the recent ones. A
// FailoverIP's status acknowledges its owner's renewals by version
// (status.ownerRenewal).
func (r *LeaseRenewer) Started(version string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.recent) - 1; i >= 0; i-- {
		if r.recent[i].version == version {
			return r.recent[i].start
		}
	}
	return time.Time{}
}

// LastRenewal is when the last successful renewal started, by Clock; zero
// if none succeeded yet.
func (r *LeaseRenewer) LastRenewal() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// Delete removes the Lease if this node holds it, for `webfarm-agent
// cleanup` when a node leaves the farm. Stop Run first, or it creates the
// Lease again. The controller takes a deleted Lease for a node that is down
// at once, so call Delete only after the node released every address it
// held; a graceful shutdown simply stops renewing instead. A missing Lease
// is no error.
func (r *LeaseRenewer) Delete(ctx context.Context) error {
	var lease coordinationv1.Lease
	if err := r.Client.Get(ctx, r.key(), &lease); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("reading Lease %s: %w", r.key(), err))
	}
	if holder := lease.Spec.HolderIdentity; holder == nil || *holder != r.Node {
		return fmt.Errorf("deleting Lease %s: held by %s, not by %s", r.key(), holderOf(&lease), r.Node)
	}
	pre := metav1.Preconditions{UID: &lease.UID, ResourceVersion: &lease.ResourceVersion}
	if err := r.Client.Delete(ctx, &lease, &client.DeleteOptions{Preconditions: &pre}); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("deleting Lease %s: %w", r.key(), err))
	}
	r.mu.Lock()
	r.lease = nil
	r.mu.Unlock()
	return nil
}

// renewWithin makes one attempt, cancelled after timeout by Clock, so that a
// fake clock drives it in tests as it drives the interval.
func (r *LeaseRenewer) renewWithin(ctx context.Context, now time.Time, timeout time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := r.clock().NewTimer(timeout)
	defer timer.Stop()
	go func() {
		select {
		case <-timer.C():
			cancel()
		case <-ctx.Done():
		}
	}()
	return r.renew(ctx, now)
}

// renew writes the Lease once: an update of the copy from the last success,
// else a read and an update, else a create. A Lease that names another
// holder is taken back: it is this node's, named after it, and only a
// renewal naming this node counts as its heartbeat for the controller.
func (r *LeaseRenewer) renew(ctx context.Context, now time.Time) error {
	r.mu.Lock()
	cached := r.lease
	r.lease = nil
	r.mu.Unlock()
	if cached != nil {
		lease := cached.DeepCopy()
		r.stamp(lease, now)
		err := r.Client.Update(ctx, lease)
		if err == nil {
			return r.confirm(lease, now)
		}
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			return fmt.Errorf("renewing Lease %s: %w", r.key(), err)
		}
	}
	lease := &coordinationv1.Lease{}
	err := r.Client.Get(ctx, r.key(), lease)
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: webfarmv1.NodeLeaseName(r.Node), Namespace: r.Namespace}}
		r.stamp(lease, now)
		if err := r.Client.Create(ctx, lease); err != nil {
			return fmt.Errorf("creating Lease %s: %w", r.key(), err)
		}
		return r.confirm(lease, now)
	}
	if err != nil {
		return fmt.Errorf("reading Lease %s: %w", r.key(), err)
	}
	if holder := holderOf(lease); holder != r.Node {
		logr.FromContextOrDiscard(ctx).Info("Taking back the node Lease from another holder", "holder", holder)
	}
	r.stamp(lease, now)
	if err := r.Client.Update(ctx, lease); err != nil {
		return fmt.Errorf("renewing Lease %s: %w", r.key(), err)
	}
	return r.confirm(lease, now)
}

// confirm checks that the Lease as the API server stored it is this
// renewal — held by this node, renewed at now — before it counts as one: a
// Lease that names another holder (rewritten on its way, say) shows the
// controller nothing of this node, so it proves nothing to the node either.
func (r *LeaseRenewer) confirm(lease *coordinationv1.Lease, now time.Time) error {
	renewed := lease.Spec.RenewTime
	if holder := holderOf(lease); holder != r.Node || renewed == nil || !renewed.Truncate(time.Microsecond).Equal(now.Truncate(time.Microsecond)) {
		return fmt.Errorf("renewing Lease %s: the API server stored holder %s renewed at %v, not this renewal", r.key(), holderOf(lease), renewed)
	}
	r.keep(lease, renewal{version: webfarmv1.LeaseRenewalVersion(renewed.Time), start: now})
	return nil
}

func (r *LeaseRenewer) stamp(lease *coordinationv1.Lease, now time.Time) {
	t := metav1.NewMicroTime(now)
	spec := &lease.Spec
	if spec.HolderIdentity == nil || *spec.HolderIdentity != r.Node || spec.AcquireTime == nil {
		node := r.Node
		spec.HolderIdentity, spec.AcquireTime = &node, &t
	}
	seconds := int32(math.Ceil(r.duration().Seconds()))
	spec.LeaseDurationSeconds = &seconds
	spec.RenewTime = &t
}

// waitNext waits until an interval after start, or RetryAfter it after a
// failure, reading Interval again as it waits and when woken. It returns
// false when ctx is done.
func (r *LeaseRenewer) waitNext(ctx context.Context, start time.Time, failed bool) bool {
	clk := r.clock()
	wake := r.wakeChan()
	for {
		if r.asap.Swap(false) {
			return true
		}
		interval := r.interval()
		if failed {
			interval = RetryAfter(interval)
		}
		left := start.Add(interval).Sub(clk.Now())
		if left <= 0 {
			return true
		}
		timer := clk.NewTimer(min(left, intervalPoll))
		select {
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-timer.C():
		case <-wake:
			timer.Stop()
		}
	}
}

func (r *LeaseRenewer) interval() time.Duration {
	if r.Interval != nil {
		if d := r.Interval(); d > 0 {
			return d
		}
	}
	return DefaultInterval
}

func (r *LeaseRenewer) duration() time.Duration {
	d := 4 * r.interval()
	if r.Duration != nil {
		if given := r.Duration(); given > 0 {
			d = given
		}
	}
	return max(d, time.Second)
}

func (r *LeaseRenewer) clock() clock.Clock {
	if r.Clock == nil {
		return clock.RealClock{}
	}
	return r.Clock
}

func (r *LeaseRenewer) key() client.ObjectKey {
	return client.ObjectKey{Namespace: r.Namespace, Name: webfarmv1.NodeLeaseName(r.Node)}
}

func (r *LeaseRenewer) setLast(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = t
}

func (r *LeaseRenewer) keep(lease *coordinationv1.Lease, done renewal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lease = lease
	if len(r.recent) == recentRenewals {
		r.recent = append(r.recent[:0], r.recent[1:]...)
	}
	r.recent = append(r.recent, done)
}

func holderOf(lease *coordinationv1.Lease) string {
	if lease.Spec.HolderIdentity == nil {
		return "nobody"
	}
	return *lease.Spec.HolderIdentity
}
