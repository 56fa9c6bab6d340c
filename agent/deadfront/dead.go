package deadfront

import (
	"fmt"
	"time"
)

// Front is another front as the failover protocol sees it.
type Front struct {
	Name string
	// Down: the controller marked its FrontNode Down (its Lease expired).
	Down bool
	// Draining: the front is being drained. Its servers then follow
	// HAProxy's checks only: a drained front whose agent is stopped may
	// still serve the clients holding its cookie.
	Draining bool
	// Heard is, per failover IP the front sent claims for, when its last
	// heartbeat arrived and how long that failover IP lets it be silent.
	Heard []Heard
}

// Heard is the last heartbeat of a front about one failover IP.
type Heard struct {
	LastHeard time.Time
	Deadtime  time.Duration
}

// Dead tells whether f is dead at now, and why: the controller says it is
// Down, or it has been silent beyond the deadtime of every failover IP it
// was heard for. A front never heard is dead only when the controller says
// so: this node may just have started.
func Dead(f Front, now time.Time) (bool, string) {
	if f.Draining {
		return false, ""
	}
	if f.Down {
		return true, "its FrontNode is Down"
	}
	if len(f.Heard) == 0 {
		return false, ""
	}
	var latest time.Time
	for _, h := range f.Heard {
		if h.Deadtime <= 0 || now.Sub(h.LastHeard) <= h.Deadtime {
			return false, ""
		}
		latest = later(latest, h.LastHeard)
	}
	return true, fmt.Sprintf("no peer heartbeat for %s, beyond its deadtime", now.Sub(latest).Round(time.Millisecond))
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
