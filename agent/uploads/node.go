package uploads

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/fsnotify/fsnotify"
)

// Router hands the transfers the daemon logs to the Syncer of their
// module. The daemon serves every directory of the node, so one log holds
// them all.
type Router struct {
	mu      sync.Mutex
	tail    logTail
	syncers map[string]*Syncer
	// sessions are the daemon's sessions writing into a module, by
	// process, from their first line until their last.
	sessions map[int]session
}

// session is where one of the daemon's sessions writes: a module, and a
// directory below it (Transfer.Dest).
type session struct{ module, dest string }

// NewRouter reads the transfer log of the daemon of cfg.
func NewRouter(cfg DaemonConfig) *Router {
	return &Router{tail: logTail{path: cfg.logPath()}, syncers: map[string]*Syncer{}, sessions: map[int]session{}}
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
// on; a Syncer calls it before its local changes settle. Each Syncer is
// also told which sessions are still writing into its directory: rsync's
// receiver passes its log lines to its sibling process, which writes them
// when it next reads its messages, often after the file is in place.
func (r *Router) Drain() {
	r.mu.Lock()
	defer r.mu.Unlock()
	// A session whose process is gone has written all its lines: they
	// are read below.
	var gone []int
	for pid := range r.sessions {
		if !alive(pid) {
			gone = append(gone, pid)
		}
	}
	lines, err := r.tail.read()
	for _, l := range lines {
		switch {
		case l.receiving != "":
			r.sessions[l.pid] = session{l.receiving, l.dest}
		case l.ended:
			delete(r.sessions, l.pid)
		case l.transfer != nil:
			t := *l.transfer
			t.Session = l.pid
			if in, ok := r.sessions[l.pid]; ok && in.module == t.Module {
				t.Dest = in.dest
			}
			if s, ok := r.syncers[t.Module]; ok {
				s.Received(t)
			}
		}
	}
	for _, pid := range gone {
		delete(r.sessions, pid)
	}
	intoTree, intoStaging := map[string][]int{}, map[string][]int{}
	for pid, in := range r.sessions {
		if in.dest == "" {
			intoTree[in.module] = append(intoTree[in.module], pid)
		} else {
			intoStaging[in.module] = append(intoStaging[in.module], pid)
		}
	}
	for module, s := range r.syncers {
		s.receiving(intoTree[module], intoStaging[module])
	}
	if err != nil {
		for _, s := range r.syncers {
			s.fail(err)
		}
	}
}

// alive tells whether process pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Follow drains the daemon's log as it grows, until stopped: a
// session's last line then wakes the Syncers whose changes wait for it
// (a file renamed into place here, mayBeLocal), rather than their next
// look, a quiet period later. The log's directory is watched, not the
// file: the daemon makes it anew when it is removed. stop ends the
// following and returns once it has.
func (r *Router) Follow() (stop func(), err error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("following the transfer log: %w", err)
	}
	if err := w.Add(filepath.Dir(r.tail.path)); err != nil {
		w.Close()
		return nil, fmt.Errorf("following the transfer log: %w", err)
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		defer w.Close()
		for {
			select {
			case <-done:
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Name == r.tail.path && ev.Has(fsnotify.Write) {
					r.Drain()
				}
			case _, ok := <-w.Errors:
				// An overflow lost events, not lines: the next event or
				// step reads them.
				if !ok {
					return
				}
			}
		}
	}()
	return func() { close(done); <-stopped }, nil
}
