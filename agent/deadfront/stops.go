package deadfront

import "time"

// Stops remembers the fronts whose agents said they were shutting down (their
// FrontNode's status.shuttingDown), until this node hears them again: an
// agent that restarts falls silent after it said so, and its successor may
// report that it no longer shuts down before its first heartbeat arrives.
// The zero value is ready; it is not safe for concurrent use.
type Stops struct {
	// seen is, by front, when this node first saw its agent shutting down.
	seen map[string]time.Time
}

// Stopped tells whether front's agent stopped and was not heard since this
// node saw it say so. shuttingDown is what its FrontNode says now, heard its
// heartbeats as in Front.Heard.
func (s *Stops) Stopped(front string, shuttingDown bool, heard []Heard, now time.Time) bool {
	if s.seen == nil {
		s.seen = map[string]time.Time{}
	}
	seen, remembered := s.seen[front]
	switch {
	case shuttingDown && !remembered:
		s.seen[front] = now
		return true
	case !remembered:
		return false
	case !heardAfter(heard, seen):
		return true
	case shuttingDown:
		// Heard while it shuts down: its silence counts from now.
		s.seen[front] = now
		return true
	}
	delete(s.seen, front)
	return false
}

// heardAfter tells whether a heartbeat in heard arrived after t.
func heardAfter(heard []Heard, t time.Time) bool {
	for _, h := range heard {
		if h.LastHeard.After(t) {
			return true
		}
	}
	return false
}
