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
	// Stopped: its agent said it was shutting down and has not been heard
	// since (Stops). Its silence says nothing of its web server, which
	// outlives the agent's restart: its servers follow HAProxy's checks
	// only, as a draining front's do.
	Stopped bool
	// Heard is, per failover IP the front sent claims for, when its last
	// heartbeat arrived and how long that failover IP lets it be silent.
	Heard []Heard
}

// Heard is the last heartbeat of a front about one failover IP.
type Heard struct {
	LastHeard time.Time
	Deadtime  time.Duration
}

// Dead tells whether f is dead at now, and why: it has been silent beyond
// the deadtime of every failover IP it was heard for, or the controller says
// it is Down and its heartbeats do not say otherwise. A front this node
// hears is alive whatever the controller says: its Lease may only have lost
// its way to the API server, and an API outage must not take the data path
// down. A front never heard is dead only when the controller says so: this
// node may just have started. A draining front, and one whose agent stopped
// and said so, are left to the checks.
func Dead(f Front, now time.Time) (bool, string) {
	if f.Draining || f.Stopped {
		return false, ""
	}
	silent, latest := silence(f.Heard, now)
	switch {
	case len(f.Heard) > 0 && !silent:
		return false, ""
	case f.Down:
		return true, "its FrontNode is Down"
	case len(f.Heard) > 0:
		return true, fmt.Sprintf("no peer heartbeat for %s, beyond its deadtime", now.Sub(latest).Round(time.Millisecond))
	}
	return false, ""
}

// silence tells whether every heartbeat in heard is older than its
// deadtime, and when the latest arrived. A heartbeat of unknown deadtime
// is never silent.
func silence(heard []Heard, now time.Time) (bool, time.Time) {
	var latest time.Time
	for _, h := range heard {
		if h.Deadtime <= 0 || now.Sub(h.LastHeard) <= h.Deadtime {
			return false, h.LastHeard
		}
		latest = later(latest, h.LastHeard)
	}
	return true, latest
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
