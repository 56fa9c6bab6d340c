package failoversim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/webfarm/webfarm/agent/ownership"
)

// Config is one simulated farm.
type Config struct {
	// Nodes are the fronts, all candidates of the one FailoverIP.
	Nodes  []string
	Timing ownership.Timing
	// PreferredNode and AutoFailback are the FailoverIP's.
	PreferredNode string
	AutoFailback  bool
	// Gate switches on the kernel dead-man gate (kernel.go).
	Gate bool
	// DriftPPM bounds every clock's rate error, in parts per million.
	DriftPPM int64
	// Tick is the longest the agent's loop waits on time alone
	// (agent/failover.go failoverTick).
	Tick time.Duration
	// CallTimeout bounds the controller's API calls (see
	// docs/failover-safety.md: the liveness bound needs one).
	CallTimeout time.Duration
	Net         NetConfig
	// Trace records every event for a replay.
	Trace bool
}

// Address is the simulated failover address, for reasons only.
const Address = "10.0.0.100"

// fipKey names the simulated FailoverIP.
const fipKey = "default/vip"

// DefaultConfig is a farm of n fronts at the CRD defaults.
func DefaultConfig(n int) Config {
	cfg := Config{
		Timing:      ownership.Timing{Keepalive: 500 * time.Millisecond, Deadtime: 2 * time.Second, Guard: 500 * time.Millisecond},
		Gate:        true,
		DriftPPM:    1000,
		Tick:        100 * time.Millisecond,
		CallTimeout: time.Second,
		Net:         NetConfig{MinDelay: 200 * time.Microsecond, MaxDelay: 2 * time.Millisecond},
	}
	for i := range n {
		cfg.Nodes = append(cfg.Nodes, fmt.Sprintf("front%d", i+1))
	}
	return cfg
}

type event struct {
	at  int64
	seq uint64
	fn  func()
}

// World is one run: global time, the event queue, the parties and the
// checker.
type World struct {
	cfg    Config
	now    int64
	seq    uint64
	queue  []event
	rng    *rand.Rand
	net    *network
	api    *apiServer
	ctrl   *controller
	agents []*agent
	check  checker
	trace  strings.Builder
	// decisions counts the calls of Decide, for the figures.
	decisions uint64
	// challenges numbers the peer challenges; keys the nodes' peer keys.
	challenges int
	keys       int
}

// NewWorld builds a farm whose randomness (delays, losses, clock drifts)
// comes from seed. Nothing runs before Run.
func NewWorld(cfg Config, seed uint64) *World {
	w := &World{cfg: cfg, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	parties := 2 + len(cfg.Nodes)
	w.net = newNetwork(w, parties, cfg.Net)
	w.api = newAPIServer(w, cfg)
	w.ctrl = newController(w, w.newClock())
	for i, name := range cfg.Nodes {
		w.agents = append(w.agents, newAgent(w, i, name, w.newClock()))
	}
	w.initKeys()
	w.check.init(w)
	w.at(0, "boot", func() {
		w.ctrl.start()
		for _, a := range w.agents {
			a.powerOn()
		}
	})
	return w
}

func (w *World) newClock() *driftClock {
	var ppm int64
	if w.cfg.DriftPPM > 0 {
		ppm = w.rng.Int64N(2*w.cfg.DriftPPM+1) - w.cfg.DriftPPM
	}
	return &driftClock{w: w, offset: w.rng.Int64N(int64(time.Hour)), ppm: ppm}
}

// Now is the global time since the start.
func (w *World) Now() time.Duration { return time.Duration(w.now) }

// at runs fn at global time t; what names it in the trace (empty: an
// internal step, not traced).
func (w *World) at(t int64, what string, fn func()) {
	if t < w.now {
		t = w.now
	}
	if what != "" {
		inner := fn
		fn = func() { w.tracef("%s", what); inner() }
	}
	w.seq++
	w.push(event{at: t, seq: w.seq, fn: fn})
}

func (w *World) after(d time.Duration, fn func()) { w.at(w.now+int64(d), "", fn) }

// At schedules a scenario step at global time t, traced as what.
func (w *World) At(t time.Duration, what string, fn func()) { w.at(int64(t), what, fn) }

// Run runs every event up to global time until, checking the invariant at
// every instant where something happened.
func (w *World) Run(until time.Duration) {
	end := int64(until)
	for len(w.queue) > 0 && w.queue[0].at <= end {
		e := w.pop()
		w.now = e.at
		e.fn()
		if len(w.queue) == 0 || w.queue[0].at > w.now {
			w.check.instant(w)
		}
	}
	if end > w.now {
		w.now = end
		w.check.instant(w)
	}
}

func (w *World) tracef(format string, args ...any) {
	if !w.cfg.Trace {
		return
	}
	fmt.Fprintf(&w.trace, "%12.6fs  ", time.Duration(w.now).Seconds())
	fmt.Fprintf(&w.trace, format, args...)
	w.trace.WriteByte('\n')
}

// Trace is every traced event so far, one a line.
func (w *World) Trace() string { return w.trace.String() }

func (w *World) push(e event) {
	w.queue = append(w.queue, e)
	i := len(w.queue) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !w.queue[i].before(w.queue[p]) {
			break
		}
		w.queue[i], w.queue[p] = w.queue[p], w.queue[i]
		i = p
	}
}

func (w *World) pop() event {
	top := w.queue[0]
	last := len(w.queue) - 1
	w.queue[0] = w.queue[last]
	w.queue = w.queue[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && w.queue[l].before(w.queue[m]) {
			m = l
		}
		if r < last && w.queue[r].before(w.queue[m]) {
			m = r
		}
		if m == i {
			break
		}
		w.queue[i], w.queue[m] = w.queue[m], w.queue[i]
		i = m
	}
	return top
}

func (e event) before(o event) bool { return e.at < o.at || (e.at == o.at && e.seq < o.seq) }

// front returns the named front's agent.
func (w *World) front(name string) *agent {
	for _, a := range w.agents {
		if a.name == name {
			return a
		}
	}
	panic("no front " + name)
}
