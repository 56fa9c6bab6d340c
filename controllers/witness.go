package controllers

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// Witnesses remembers, by the controller's own clock, when it first saw
// each FailoverIP's owner witness (status.ownerWitness): the owner's own
// compare-and-swap on the status, the API server's vote for it. A witness
// counts as a sighting of the owner alive, as a renewal of its Lease does:
// the controller moves the address only deadtime plus guard after the last
// one. It never reads the witness as a time (the owner's clock), only as a
// change. A witness it has not seen before counts as seen now, after a
// restart too: it cannot tell how old it is. It is safe for concurrent use.
type Witnesses struct {
	clock clock.PassiveClock

	mu   sync.Mutex
	seen map[types.NamespacedName]witnessSighting
}

type witnessSighting struct {
	witness webfarmv1.OwnerWitness
	at      time.Time
}

// NewWitnesses returns a record with no sighting yet.
func NewWitnesses(c clock.PassiveClock) *Witnesses {
	return &Witnesses{clock: c, seen: map[types.NamespacedName]witnessSighting{}}
}

// lastSeen is when the controller first saw the witness that st holds,
// if it was written by st's owner at st's epoch: a witness of an earlier
// owner or epoch proves nothing of the current one. ok is false when there
// is no such witness.
func (w *Witnesses) lastSeen(key types.NamespacedName, st webfarmv1.FailoverIPStatus) (at time.Time, ok bool) {
	wit := st.OwnerWitness
	if wit == nil || st.Owner == "" || wit.Node != st.Owner || wit.Epoch != st.Epoch {
		return time.Time{}, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if s, ok := w.seen[key]; ok && s.witness == *wit {
		return s.at, true
	}
	now := w.clock.Now()
	w.seen[key] = witnessSighting{witness: *wit, at: now}
	return now, true
}

// Forget drops the sighting of a FailoverIP that is gone.
func (w *Witnesses) Forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.seen, key)
}

// Witnessed makes the owner among fronts alive as late as its witness in
// st shows it (lastSeen): heard, and last alive then if that is later
// than its Lease shows.
func (w *Witnesses) Witnessed(key types.NamespacedName, st webfarmv1.FailoverIPStatus, fronts []ElectionFront) {
	at, ok := w.lastSeen(key, st)
	if !ok {
		return
	}
	for i := range fronts {
		if f := &fronts[i]; f.Name == st.Owner && (!f.Heard || at.After(f.LastAlive)) {
			f.Heard, f.LastAlive = true, at
		}
	}
}
