package failoversim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"

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

// fipName is fipKey as the controller's records name it.
var fipName = types.NamespacedName{Namespace: "default", Name: "vip"}

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

// event is one step at a global instant. Most are an agent's: a and inc
// bind fn to one process of it, as agent.proc does, and a timer's fire
// only while *timer is still tseq (agent.resetTimer), without a closure
// more; a message in flight is r alone.
type event struct {
	fn    func()
	a     *agent
	inc   int
	timer *int
	tseq  int
	r     runner
}

// runner is a message in flight that knows what its arrival does.
type runner interface{ run() }

func (e *event) run() {
	switch {
	case e.r != nil:
		e.r.run()
	case e.a == nil:
		e.fn()
	case e.a.inc != e.inc:
	case e.timer == nil:
		e.a.deliver(e.fn)
	case e.a.up && !e.a.paused:
		if *e.timer == e.tseq {
			e.fn()
		}
	default:
		timer, seq, fn := e.timer, e.tseq, e.fn
		e.a.deliver(func() {
			if *timer == seq {
				fn()
			}
		})
	}
}

// World is one run: global time, the event queue, the parties and the
// checker.
type World struct {
	cfg    Config
	now    int64
	queue  eventQueue
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
	// flights are datagrams delivered, kept for the next ones sent.
	flights []*flight
}

// NewWorld builds a farm whose randomness (delays, losses, clock drifts)
// comes from seed. Nothing runs before Run.
func NewWorld(cfg Config, seed uint64) *World {
	w := &World{cfg: cfg, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), queue: newEventQueue()}
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
	if what != "" && w.cfg.Trace {
		inner := fn
		fn = func() { w.tracef("%s", what); inner() }
	}
	w.queue.push(t, event{fn: fn})
}

// atAgent runs fn at global time t in the current process of a (agent.proc).
func (w *World) atAgent(t int64, a *agent, fn func()) {
	w.queue.push(max(t, w.now), event{fn: fn, a: a, inc: a.inc})
}

func (w *World) after(d time.Duration, fn func()) { w.at(w.now+int64(d), "", fn) }

// At schedules a scenario step at global time t, traced as what.
func (w *World) At(t time.Duration, what string, fn func()) { w.at(int64(t), what, fn) }

// Run runs every event up to global time until, checking the invariant at
// every instant where something happened.
func (w *World) Run(until time.Duration) {
	end := int64(until)
	for w.queue.len() > 0 && w.queue.next() <= end {
		at, e := w.queue.pop()
		w.now = at
		e.run()
		if w.queue.len() == 0 || w.queue.next() > w.now {
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

// front returns the named front's agent.
func (w *World) front(name string) *agent {
	for _, a := range w.agents {
		if a.name == name {
			return a
		}
	}
	panic("no front " + name)
}
