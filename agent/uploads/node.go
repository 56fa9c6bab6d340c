package uploads

import (
	"sync"
)

// Router hands the transfers the daemon logs to the Syncer of their
// module. The daemon serves every directory of the node, so one log holds
// them all.
type Router struct {
	mu      sync.Mutex
	tail    logTail
	syncers map[string]*Syncer
}

// NewRouter reads the transfer log of the daemon of cfg.
func NewRouter(cfg DaemonConfig) *Router {
	return &Router{tail: logTail{path: cfg.logPath()}, syncers: map[string]*Syncer{}}
}

// Set routes module's transfers to s; a nil s stops routing them.
func (r *Router) Set(module string, s *Syncer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s == nil {
		delete(r.syncers, module)
		return
	}
	r.syncers[module] = s
}

// Drain reads what the daemon logged since the last call and hands it
// on; a Syncer calls it before its local changes settle.
func (r *Router) Drain() {
	r.mu.Lock()
	defer r.mu.Unlock()
	trs, err := r.tail.read()
	for _, t := range trs {
		if s, ok := r.syncers[t.Module]; ok {
			s.Received(t)
		}
	}
	if err != nil {
		for _, s := range r.syncers {
			s.fail(err)
		}
	}
}
