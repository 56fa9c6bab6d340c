package deadfront

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Runtime is the part of HAProxy's runtime API the Marker uses.
type Runtime interface {
	// SetHealthDown marks a server down as a failed check would; the check
	// brings it back.
	SetHealthDown(ctx context.Context, backend, server string) error
}

// Server is one HAProxy server of a front.
type Server struct{ Backend, Name string }

// Marker marks the servers of dead fronts down, once per death. It never
// brings a server back itself: a front heard again returns through
// HAProxy's checks (rise good ones), so that a flapping link does not
// bounce traffic, and a front that only the heartbeats miss (its agent
// stopped, its web server serving) comes back the same way.
type Marker struct {
	Runtime Runtime

	mu sync.Mutex
	// marked are the fronts whose servers were marked down during their
	// current death.
	marked map[string]bool
}

// Sync marks down every server of the fronts in dead that are not marked
// yet, and forgets the fronts that are no longer dead, so that their next
// death marks them again. It returns the fronts it marked; a front whose
// servers could not all be marked is tried again at the next Sync.
func (m *Marker) Sync(ctx context.Context, dead map[string][]Server) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.marked == nil {
		m.marked = map[string]bool{}
	}
	maps.DeleteFunc(m.marked, func(front string, _ bool) bool { _, still := dead[front]; return !still })
	var newly []string
	var errs []error
	for _, front := range slices.Sorted(maps.Keys(dead)) {
		if m.marked[front] {
			continue
		}
		if err := m.markDown(ctx, dead[front]); err != nil {
			errs = append(errs, fmt.Errorf("front %s: %w", front, err))
			continue
		}
		m.marked[front] = true
		newly = append(newly, front)
	}
	return newly, errors.Join(errs...)
}

func (m *Marker) markDown(ctx context.Context, servers []Server) error {
	var errs []error
	for _, s := range servers {
		errs = append(errs, m.Runtime.SetHealthDown(ctx, s.Backend, s.Name))
	}
	return errors.Join(errs...)
}

// Forget makes the next Sync mark every dead front again: after HAProxy
// reloaded or restarted, a mark sent to the old worker may be lost.
func (m *Marker) Forget() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.marked)
}
