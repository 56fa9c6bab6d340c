// Package witness lets the owner of a failover IP prove itself alive
// through the API server in one round trip: a compare-and-swap on the
// FailoverIP's status (status.ownerWitness) that holds only while the
// status still names this node owner at the epoch it owns. It is the API
// server's vote for an owner its peers do not vouch for: the one server
// left of two, or both sides of a partition of a two-front farm, of which
// only the side that still reaches the API server can write it.
//
// Why a witness proves the owner alive until deadtime minus guard after it
// was sent: the controller moves the address by a compare-and-swap on the
// same object, so a witness that landed before a move is one the
// controller read before it moved, and it moves only deadtime plus guard
// after it first saw it (controllers/witness.go). docs/failover-safety.md
// gives the full argument.
package witness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/webfarm/webfarm/agent/heartbeat"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// The results an attempt reports to Witness.Written.
const (
	Landed = "landed"
	// Refused: the API server answered no, most often because the status
	// no longer names this node owner at that epoch (a test failed).
	Refused = "refused"
	// Failed: no answer in time, or a server error.
	Failed = "failed"
)

// Target is a FailoverIP this node owns and must prove itself alive for.
type Target struct {
	Name types.NamespacedName
	// UID is the object's: a FailoverIP recreated under the same name is
	// another one.
	UID types.UID
	// Epoch is the epoch the node owns it at.
	Epoch int64
	// Every is how often to write a witness: the FailoverIP's keepalive.
	Every time.Duration
}

// Witness writes this node's witnesses for the targets it is given, each
// every Target.Every, and remembers when the latest successful one of each
// started. An attempt that is slow does not hold the next one back (up to
// MaxInFlight of them): on a loaded API server one write in ten took
// longer than a 200 ms keepalive, and a lone owner whose next witness
// waited for it went without proof long enough to fence.
type Witness struct {
	// Client reaches the API server directly (no cache).
	Client client.Client
	Node   string
	// Clock is the real clock when nil.
	Clock clock.Clock
	// Proved, when set, is called after each successful witness: the
	// decision it may change is due at once.
	Proved func()
	// Written, when set, is told how each attempt went (Landed, Refused
	// or Failed) and how long it took.
	Written func(result string, took time.Duration)

	mu      sync.Mutex
	targets map[string]Target
	proofs  map[string]proof
	// inFlight counts each target's attempts under way.
	inFlight map[string]int
	// tried is when the last attempt of each target started: failed or
	// not, the next one comes Every later.
	tried map[string]time.Time
	wake  chan struct{}
}

// proof is the start of the last successful witness of one target.
type proof struct {
	epoch int64
	uid   types.UID
	start time.Time
}

// Set replaces the targets, by FailoverIP key; a target no longer given
// is no longer written, and its proof is forgotten.
func (w *Witness) Set(targets map[string]Target) {
	w.mu.Lock()
	if maps.Equal(w.targets, targets) {
		// Every pass sets the targets; most passes change nothing.
		w.mu.Unlock()
		return
	}
	before := w.targets
	w.targets = maps.Clone(targets)
	for key := range w.proofs {
		if _, ok := targets[key]; !ok {
			delete(w.proofs, key)
		}
	}
	for key, t := range w.targets {
		if old, ok := before[key]; !ok || old.Epoch != t.Epoch || old.UID != t.UID {
			// A new epoch or object is due at once.
			delete(w.tried, key)
		}
	}
	w.mu.Unlock()
	w.signal()
}

// Since is when the last successful witness for key at epoch started, by
// Clock; zero when there is none.
func (w *Witness) Since(key string, uid types.UID, epoch int64) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, ok := w.proofs[key]; ok && p.epoch == epoch && p.uid == uid {
		return p.start
	}
	return time.Time{}
}

// Run writes witnesses until ctx is done.
func (w *Witness) Run(ctx context.Context) {
	wake := w.wakeChan()
	for {
		next := w.startDue(ctx)
		timer := w.clock().NewTimer(next)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C():
		case <-wake:
			timer.Stop()
		}
	}
}

// idle is how long Run waits with no target: Set wakes it anyway.
const idle = time.Second

// MaxInFlight bounds the attempts under way for one target, so that an
// API server that hangs is not sent ever more of them.
const MaxInFlight = 4

// startDue starts the witnesses that are due and returns how long until
// the next one is.
func (w *Witness) startDue(ctx context.Context) time.Duration {
	now := w.clock().Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	next := idle
	for key, t := range w.targets {
		if w.inFlight[key] >= MaxInFlight {
			next = min(next, t.Every)
			continue
		}
		due := w.tried[key].Add(t.Every)
		if !now.Before(due) {
			w.start(ctx, key, t, now)
			next = min(next, t.Every)
			continue
		}
		next = min(next, due.Sub(now))
	}
	return next
}

// start writes one witness for key in the background; w.mu is held.
func (w *Witness) start(ctx context.Context, key string, t Target, start time.Time) {
	if w.inFlight == nil {
		w.inFlight, w.tried = map[string]int{}, map[string]time.Time{}
	}
	w.inFlight[key]++
	w.tried[key] = start
	go func() {
		err := w.write(ctx, t, start)
		if w.Written != nil {
			w.Written(result(err), w.clock().Since(start))
		}
		w.mu.Lock()
		if w.inFlight[key]--; w.inFlight[key] == 0 {
			delete(w.inFlight, key)
		}
		ok := err == nil && w.targets[key] == t
		if p, had := w.proofs[key]; ok && (!had || p.epoch != t.Epoch || p.uid != t.UID || start.After(p.start)) {
			// A slower attempt that lands after a later one proves less.
			if w.proofs == nil {
				w.proofs = map[string]proof{}
			}
			w.proofs[key] = proof{epoch: t.Epoch, uid: t.UID, start: start}
		}
		w.mu.Unlock()
		if err != nil {
			logr.FromContextOrDiscard(ctx).V(1).Info("Writing an owner witness", "failoverIP", key, "epoch", t.Epoch, "error", err.Error())
		}
		if ok && w.Proved != nil {
			w.Proved()
		}
		w.signal()
	}()
}

// write patches the witness of t into the status, on the condition that
// the object is still t's, names this node owner at t's epoch, and was
// written by a controller that counts witnesses: the API server applies a
// JSON patch's tests and its change in one step, and fails it whole when a
// test fails. A witness the API server did not store as written counts
// for nothing.
func (w *Witness) write(ctx context.Context, t Target, start time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, heartbeat.AttemptTimeout(t.Every))
	defer cancel()
	wit := webfarmv1.OwnerWitness{Node: w.Node, Epoch: t.Epoch, Renewal: webfarmv1.LeaseRenewalVersion(start)}
	patch, err := json.Marshal([]patchOp{
		{Op: "test", Path: "/metadata/uid", Value: t.UID},
		{Op: "test", Path: "/status/owner", Value: w.Node},
		{Op: "test", Path: "/status/epoch", Value: t.Epoch},
		{Op: "test", Path: "/status/ownerWitnessCounted", Value: true},
		{Op: "add", Path: "/status/ownerWitness", Value: wit},
	})
	if err != nil {
		return fmt.Errorf("encoding the witness patch: %w", err)
	}
	fip := &webfarmv1.FailoverIP{}
	fip.Namespace, fip.Name = t.Name.Namespace, t.Name.Name
	if err := w.Client.Status().Patch(ctx, fip, client.RawPatch(types.JSONPatchType, patch)); err != nil {
		return fmt.Errorf("writing the owner witness of FailoverIP %s at epoch %d: %w", t.Name, t.Epoch, err)
	}
	if got := fip.Status.OwnerWitness; got == nil || *got != wit {
		// A CRD from before witnesses prunes the field: the controller
		// would never see it.
		return fmt.Errorf("writing the owner witness of FailoverIP %s at epoch %d: the API server stored %+v, not %+v (is the CRD older than the agent?)", t.Name, t.Epoch, got, wit)
	}
	return nil
}

// result names the outcome of an attempt that returned err.
func result(err error) string {
	var status apierrors.APIStatus
	switch {
	case err == nil:
		return Landed
	case errors.As(err, &status) && status.Status().Code >= 400 && status.Status().Code < 500:
		return Refused
	}
	return Failed
}

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

func (w *Witness) signal() {
	select {
	case w.wakeChan() <- struct{}{}:
	default:
	}
}

func (w *Witness) wakeChan() chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.wake == nil {
		w.wake = make(chan struct{}, 1)
	}
	return w.wake
}

func (w *Witness) clock() clock.Clock {
	if w.Clock == nil {
		return clock.RealClock{}
	}
	return w.Clock
}
