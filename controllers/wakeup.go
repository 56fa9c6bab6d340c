package controllers

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// wakeups is a controller source that enqueues a request at an instant of
// the controller's clock: when a heartbeat turns stale or a fence expires.
// The workqueue's own RequeueAfter runs on the wall clock, which a test's
// fake clock cannot move.
type wakeups struct {
	clock clock.WithDelayedExecution
	queue atomic.Pointer[workqueue.TypedRateLimitingInterface[reconcile.Request]]

	mu      sync.Mutex
	pending map[reconcile.Request]wakeup
}

type wakeup struct {
	at    time.Time
	timer clock.Timer
}

func newWakeups(c clock.WithDelayedExecution) *wakeups {
	return &wakeups{clock: c, pending: map[reconcile.Request]wakeup{}}
}

// Start implements source.TypedSource.
func (w *wakeups) Start(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	w.queue.Store(&q)
	return nil
}

// after enqueues req once d has passed on the controller's clock. Of two
// wake-ups of the same request, the earlier wins: the reconcile it triggers
// schedules the next one.
func (w *wakeups) after(req reconcile.Request, d time.Duration) {
	if d <= 0 {
		w.enqueue(req)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clock.Now()
	at := now.Add(d)
	if p, ok := w.pending[req]; ok {
		if p.at.After(now) && !p.at.After(at) {
			return
		}
		p.timer.Stop()
	}
	// The callback must not take w.mu: a fake clock runs it under its own
	// lock, which after takes while holding w.mu.
	w.pending[req] = wakeup{at: at, timer: w.clock.AfterFunc(d, func() { w.enqueue(req) })}
}

// forget drops req's wake-up, for an object that is gone.
func (w *wakeups) forget(req reconcile.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, ok := w.pending[req]; ok {
		p.timer.Stop()
		delete(w.pending, req)
	}
}

func (w *wakeups) enqueue(req reconcile.Request) {
	if q := w.queue.Load(); q != nil {
		(*q).Add(req)
	}
}
