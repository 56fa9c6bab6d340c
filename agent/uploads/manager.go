package uploads

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Farm is what one farm asks of this front: its directories kept in step
// with its other fronts.
type Farm struct {
	// Key is the farm as "namespace/name".
	Key string
	// Address is this front's own address, where its daemon listens.
	Address netip.Addr
	// Port of every front's daemon.
	Port int
	// Password is the farm's secret.
	Password string
	// Peers are the farm's other fronts that are up.
	Peers []Peer
	// Directories are the declared directories, Name being the module.
	Directories []Module
	// BwLimitKiBps caps each transfer; 0 does not.
	BwLimitKiBps int
}

// Manager runs, on one front, a daemon per farm and a Syncer per declared
// directory, as the farms ask.
type Manager struct {
	// StateDir holds a directory per farm: daemon configuration, secrets,
	// log.
	StateDir string
	// Self is this front's node name.
	Self string
	// Binary is rsync; "rsync" from PATH when empty.
	Binary string
	// Propagated, when set, is told how long each change took to reach a
	// peer.
	Propagated func(time.Duration)

	mu    sync.Mutex
	farms map[string]*farmRun
}

type farmRun struct {
	daemon  *Daemon
	router  *Router
	syncers map[string]*syncRun
	// stopFollowing ends the Router's following of the daemon's log; nil
	// until it follows.
	stopFollowing func()
}

type syncRun struct {
	module Module
	s      *Syncer
	cancel context.CancelFunc
	done   chan struct{}
}

// Apply brings the daemons and Syncers in line with farms; the Syncers run
// until ctx is done, or until their farm or directory goes.
func (m *Manager) Apply(ctx context.Context, farms []Farm) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.farms == nil {
		m.farms = map[string]*farmRun{}
	}
	want := map[string]bool{}
	var errs []string
	for _, f := range farms {
		want[f.Key] = true
		if err := m.applyFarm(ctx, f); err != nil {
			errs = append(errs, fmt.Sprintf("farm %s: %v", f.Key, err))
		}
	}
	for key, run := range m.farms {
		if !want[key] {
			run.stop()
			delete(m.farms, key)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("uploads: %s", strings.Join(errs, "; "))
	}
	return nil
}

func (m *Manager) applyFarm(ctx context.Context, f Farm) error {
	dir := filepath.Join(m.StateDir, strings.ReplaceAll(f.Key, "/", "_"))
	cfg := DaemonConfig{Address: f.Address, Port: f.Port, StateDir: dir, Modules: f.Directories}
	for _, p := range f.Peers {
		cfg.Peers = append(cfg.Peers, p.Addr)
	}
	run := m.farms[f.Key]
	if run == nil {
		run = &farmRun{daemon: &Daemon{Binary: m.Binary}, router: NewRouter(cfg), syncers: map[string]*syncRun{}}
		m.farms[f.Key] = run
	}
	if err := run.daemon.Apply(cfg, f.Password); err != nil {
		return err
	}
	passwordFile := filepath.Join(dir, "password")
	if err := writeFile(passwordFile, []byte(f.Password+"\n"), 0o600); err != nil {
		return err
	}
	rs := &Rsync{Binary: m.Binary, Self: m.Self, PasswordFile: passwordFile, Port: f.Port, BwLimitKiBps: f.BwLimitKiBps, Timeout: 60 * time.Second}
	wanted := map[string]bool{}
	for _, mod := range f.Directories {
		wanted[mod.Name] = true
		sr := run.syncers[mod.Name]
		if sr != nil && (sr.module != mod || !sameClient(sr.s.Rsync, rs)) {
			sr.stop(run.router)
			sr = nil
		}
		if sr == nil {
			sr = m.startSyncer(ctx, run.router, mod, rs)
			run.syncers[mod.Name] = sr
		}
		sr.s.SetPeers(f.Peers)
	}
	for name, sr := range run.syncers {
		if !wanted[name] {
			sr.stop(run.router)
			delete(run.syncers, name)
		}
	}
	// Without it, the Syncers still read the log at each step: a failure
	// is reported, and the next apply tries again.
	if run.stopFollowing == nil {
		stop, err := run.router.Follow()
		if err != nil {
			return err
		}
		run.stopFollowing = stop
	}
	return nil
}

func (m *Manager) startSyncer(ctx context.Context, router *Router, mod Module, rs *Rsync) *syncRun {
	s := &Syncer{Module: mod, Rsync: rs, Drain: router.Drain, Propagated: m.Propagated}
	router.Set(mod.Name, s)
	ctx, cancel := context.WithCancel(ctx)
	sr := &syncRun{module: mod, s: s, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(sr.done)
		if err := s.Run(ctx); err != nil {
			s.init()
			s.fail(err)
		}
	}()
	return sr
}

func (sr *syncRun) stop(router *Router) {
	router.Set(sr.module.Name, nil)
	sr.cancel()
	<-sr.done
}

func (r *farmRun) stop() {
	if r.stopFollowing != nil {
		r.stopFollowing()
	}
	for _, sr := range r.syncers {
		sr.stop(r.router)
	}
	r.daemon.Stop()
}

// Stop stops every Syncer and daemon.
func (m *Manager) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, run := range m.farms {
		run.stop()
		delete(m.farms, key)
	}
}

// Statuses reports every directory, by "namespace/farm/directory".
func (m *Manager) Statuses() map[string]Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]Status{}
	for key, run := range m.farms {
		for name, sr := range run.syncers {
			out[key+"/"+name] = sr.s.Status()
		}
	}
	return out
}

// CaughtUp tells whether every directory of farm is caught up here; true
// for a farm that declares none.
func (m *Manager) CaughtUp(farm string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	run := m.farms[farm]
	if run == nil {
		return true
	}
	for _, sr := range run.syncers {
		if !sr.s.Status().CaughtUp {
			return false
		}
	}
	return true
}

// sameClient tells whether two clients make the same transfers.
func sameClient(a, b *Rsync) bool {
	return a.Binary == b.Binary && a.Self == b.Self && a.PasswordFile == b.PasswordFile &&
		a.Port == b.Port && a.BwLimitKiBps == b.BwLimitKiBps && a.Timeout == b.Timeout
}
