package failoversim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/webfarm/webfarm/agent/ownership"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// Kinds selects the faults a random schedule draws from.
type Kinds uint32

const (
	// Partitions: symmetric cuts of any link between the API server, the
	// controller and the fronts; an isolated front; an API outage.
	Partitions Kinds = 1 << iota
	// OneWayCuts: asymmetric partitions: one direction of a link cut; a
	// mute front (all it sends is lost) or a deaf one (all it receives).
	OneWayCuts
	// Pauses: SIGSTOP and SIGCONT of an agent.
	Pauses
	// Crashes: an agent crashes and restarts with or without its saved
	// memory; a front loses power and comes back.
	Crashes
	// ControllerRestarts: the controller dies and a new one starts.
	ControllerRestarts
	// LossBursts: every message is lost with probability one half.
	LossBursts
	// Drains: a front is drained, then put back (planned hand-offs).
	Drains
	// TimingEdits: a user edits the FailoverIP's timings (finding 4).
	TimingEdits
	// LeaseMeddling: someone else writes a front's Lease (finding 7).
	LeaseMeddling
	// SteadyLoss: every message may be lost, up to one in five, all along
	// the chaos phase (not a fault drawn at an instant).
	SteadyLoss

	// AllKinds is every fault.
	AllKinds = Partitions | OneWayCuts | Pauses | Crashes | ControllerRestarts | LossBursts | Drains | TimingEdits | LeaseMeddling | SteadyLoss
)

var kindNames = []string{"partitions", "one-way-cuts", "pauses", "crashes", "controller-restarts", "loss-bursts", "drains", "timing-edits", "lease-meddling", "steady-loss"}

func (k Kinds) String() string {
	var names []string
	for i, n := range kindNames {
		if k&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}

// ParseKinds reads a comma-separated list of kind names, or "all".
func ParseKinds(s string) (Kinds, error) {
	if s == "" || s == "all" {
		return AllKinds, nil
	}
	var k Kinds
	for _, name := range strings.Split(s, ",") {
		i := indexOf(kindNames, name)
		if i < 0 {
			return 0, fmt.Errorf("unknown fault kind %q (want %s)", name, AllKinds)
		}
		k |= 1 << i
	}
	return k, nil
}

func indexOf(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	return -1
}

// Outcome is what one random schedule showed.
type Outcome struct {
	Seed uint64
	// Safety says when two nodes answered together; empty if never.
	Safety string
	// Liveness says how the healthy majority went without an owner past
	// its bound; empty if it got one.
	Liveness string
	// Limit says how the schedule reached the known limit of liveness
	// instead: the owner lost for good with so many of its epoch's other
	// voters that too few are left to report it unheard, none of the lost
	// ones shut down (docs/failover-safety.md, "Known limits"). Not a
	// failure.
	Limit string
	// Summary describes the farm and its timings.
	Summary           string
	Trace             string
	events, decisions uint64
	virtual           time.Duration
}

// Failed tells whether the schedule broke either property.
func (o Outcome) Failed() bool { return o.Safety != "" || o.Liveness != "" }

// schedule draws one random schedule.
type schedule struct {
	r     *rand.Rand
	w     *World
	kinds Kinds
	// timings are every timing the FailoverIP had.
	timings []ownership.Timing
	calmAt  time.Duration
	lossy   int
	baseNet NetConfig
	// meddled: someone else wrote a node's Lease (bound).
	meddled bool
	// restarted: a front's agent started again (bound).
	restarted bool
	// lost are the fronts broken for good in the calm phase; shutDown
	// those of them powered off, which the operator marks out of service.
	lost, shutDown map[int]bool
}

// RunRandom draws the schedule of seed from kinds, runs it and checks it:
// a warm-up, a chaos phase of faults that all end by calmAt, then a calm
// phase in which a minority of fronts may stay dead, paused or cut off, and
// everything else is healthy and connected. Never two answerers, anywhere;
// a node answering by calmAt+Bound and at the end.
func RunRandom(seed uint64, kinds Kinds, trace bool) Outcome {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	cfg := DefaultConfig(2 + pickWeighted(r, 4, 4, 2, 1))
	cfg.Timing = randomTiming(r)
	cfg.Net = NetConfig{MinDelay: time.Duration(100+r.IntN(900)) * time.Microsecond, Loss: pick(r, 0, 0, 0.01, 0.05, 0.2), Dup: pick(r, 0, 0.02), Spikes: true}
	if kinds&SteadyLoss == 0 {
		cfg.Net.Loss = 0
	}
	cfg.Net.MaxDelay = cfg.Net.MinDelay + time.Duration(r.IntN(30)+1)*time.Millisecond
	if r.IntN(3) == 0 {
		cfg.PreferredNode = cfg.Nodes[r.IntN(len(cfg.Nodes))]
		cfg.AutoFailback = r.IntN(2) == 0
	}
	cfg.Trace = trace
	s := &schedule{r: r, w: NewWorld(cfg, seed), kinds: kinds, timings: []ownership.Timing{cfg.Timing}, baseNet: cfg.Net}
	d := cfg.Timing.Deadtime
	warm := randDur(r, 2*d)
	s.calmAt = warm + 2*d + randDur(r, 3*d)
	for range 1 + r.IntN(5) {
		s.fault(warm + randDur(r, s.calmAt-warm))
	}
	s.calm()
	bound := s.bound()
	s.w.watchFrom(s.calmAt)
	o := s.outcome(seed, bound, s.runCalm(bound))
	s.w.queue.recycle()
	return o
}

// runCalm runs the calm phase until a node has answered without a gap for
// a deadtime, from a start within the bound, or until that can no longer
// happen; it returns where it stopped.
func (s *schedule) runCalm(bound time.Duration) time.Duration {
	deadline, hold := s.calmAt+bound, s.maxTiming().Deadtime
	for t := s.calmAt; ; t += 50 * time.Millisecond {
		s.w.Run(t)
		if from, ok := s.w.answeringSince(); ok && from <= deadline && t-from >= hold {
			return t
		}
		if t >= deadline+hold {
			return t
		}
	}
}

func (s *schedule) outcome(seed uint64, bound, end time.Duration) Outcome {
	w, t := s.w, s.w.cfg.Timing
	o := Outcome{Seed: seed, Trace: w.Trace(), events: w.queue.seq, decisions: w.decisions, virtual: w.Now(), Summary: fmt.Sprintf("%d fronts, keepalive %v deadtime %v guard %v, calm at %v, bound %v",
		len(w.agents), t.Keepalive, t.Deadtime, t.Guard, s.calmAt, bound)}
	if at, who, bad := w.Violation(); bad {
		o.Safety = fmt.Sprintf("%s answer together at %v (%v in all)", who, at, w.Overlap())
	}
	hold := s.maxTiming().Deadtime
	from, ok := w.answeringSince()
	switch first, answered := w.answeredSince(); {
	case !answered:
		o.Liveness = fmt.Sprintf("no front answers from the calm at %v to %v", s.calmAt, end)
	case !ok || from > s.calmAt+bound || end-from < hold:
		o.Liveness = fmt.Sprintf("no front answers for %v from a start within the bound %v after the calm at %v (first answer at %v; stopped at %v)",
			hold, bound, s.calmAt, first, end)
	}
	if why, limited := s.voterLimit(); o.Liveness != "" && limited {
		o.Limit, o.Liveness = why+"; "+o.Liveness, ""
	}
	return o
}

// voterLimit tells whether the owner the status names was lost for good
// together with so many of its epoch's other voters, none of them shut
// down, that too few are left to report it unheard
// (ownership.ReportsNeeded): the controller cannot tell that from those
// fronts cut off from the API server together, still vouching for each
// other, and the address stays where it is.
func (s *schedule) voterLimit() (string, bool) {
	st := s.w.api.st.status
	owner := slices.Index(s.w.cfg.Nodes, st.Owner)
	if owner < 0 || !s.lost[owner] {
		return "", false
	}
	others, reporters := 0, 0
	for _, v := range st.Voters {
		i := slices.Index(s.w.cfg.Nodes, v)
		if i == owner || i < 0 {
			continue
		}
		others++
		if !s.lost[i] || s.shutDown[i] {
			reporters++
		}
	}
	if others == 0 || reporters >= ownership.ReportsNeeded(others) {
		return "", false
	}
	return fmt.Sprintf("known limit: owner %s lost for good at epoch %d with voters %v, %d of them able to report it unheard, %d needed",
		st.Owner, st.Epoch, st.Voters, reporters, ownership.ReportsNeeded(others)), true
}

// randomTiming is a valid timing (the CRD's rules), short so that a
// schedule stays short: keepalive, then deadtime-guard above it.
func randomTiming(r *rand.Rand) ownership.Timing {
	k := time.Duration(pick(r, 100, 200, 300, 500)) * time.Millisecond
	g := time.Duration(pick(r, 50, 100, 200, 500)) * time.Millisecond
	d := max(300*time.Millisecond, 2*k+g+time.Duration(r.IntN(15))*50*time.Millisecond)
	return ownership.Timing{Keepalive: k, Deadtime: d, Guard: g}
}

func (s *schedule) maxTiming() ownership.Timing {
	var m ownership.Timing
	for _, t := range s.timings {
		m.Keepalive, m.Deadtime, m.Guard = max(m.Keepalive, t.Keepalive), max(m.Deadtime, t.Deadtime), max(m.Guard, t.Guard)
	}
	return m
}

// bound is how long after the calm a healthy majority may go without an
// owner (docs/failover-safety.md, "Liveness"): the controller's call in
// flight times out and backs off; the agents' next renewals are seen (one
// keepalive); a dead owner is fenced deadtime+guard after its last
// sighting; the new owner listens at most deadtime and decides within a
// tick; a few message delays on the way, and the clocks' drift. A Lease
// that someone else wrote is taken back only at its node's next renewal,
// up to QuietLeaseInterval later: until then the controller does not count
// that node present. A restarted agent keeps its promises up to
// promiseSlack longer than it made them.
func (s *schedule) bound() time.Duration {
	cfg, t := s.w.cfg, s.maxTiming()
	k := min(t.Keepalive, defaultKeepalive)
	b := cfg.CallTimeout + time.Second + 2*k + 2*t.Deadtime + 2*t.Guard + cfg.Tick + 10*cfg.Net.MaxDelay
	if s.meddled {
		b += webfarmv1.QuietLeaseInterval
	}
	if s.restarted {
		b += promiseSlack
	}
	return b + time.Duration(int64(b)*2*cfg.DriftPPM/1_000_000)
}

// fault schedules one fault of an enabled kind, starting at at and over by
// calmAt.
func (s *schedule) fault(at time.Duration) {
	var kinds []Kinds
	for k := Kinds(1); k <= LeaseMeddling; k <<= 1 {
		if s.kinds&k != 0 {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		return
	}
	end := min(at+1+randDur(s.r, 3*s.w.cfg.Timing.Deadtime), s.calmAt)
	w, r := s.w, s.r
	node := r.IntN(len(w.agents))
	a := w.agents[node]
	switch kinds[r.IntN(len(kinds))] {
	case Partitions:
		s.partition(at, end, false)
	case OneWayCuts:
		s.partition(at, end, true)
	case Pauses:
		w.At(at, a.name+": SIGSTOP", a.pause)
		w.At(end, a.name+": SIGCONT", a.resume)
	case Crashes:
		s.crash(a, at, end)
	case ControllerRestarts:
		w.At(at, "controller dies", w.ctrl.stop)
		w.At(end, "controller starts", w.ctrl.start)
	case LossBursts:
		w.At(at, "loss burst starts", func() { s.lossy++; w.net.cfg.Loss = 0.5 })
		w.At(end, "loss burst ends", func() {
			if s.lossy--; s.lossy == 0 {
				w.net.cfg.Loss = s.baseNet.Loss
			}
		})
	case Drains:
		w.At(at, a.name+" drained", func() { w.api.setDraining(node, true) })
		w.At(end, a.name+" undrained", func() { w.api.setDraining(node, false) })
	case TimingEdits:
		t := randomTiming(r)
		s.timings = append(s.timings, t)
		w.At(at, fmt.Sprintf("timings edited to keepalive %v deadtime %v guard %v", t.Keepalive, t.Deadtime, t.Guard), func() { w.api.setTiming(t) })
	case LeaseMeddling:
		s.meddle(node, at, end)
	}
}

func (s *schedule) crash(a *agent, at, end time.Duration) {
	w := s.w
	s.restarted = true
	switch s.r.IntN(3) {
	case 0:
		w.At(at, a.name+": power off", a.powerOff)
		w.At(end, a.name+": power on", a.powerOn)
	case 1:
		w.At(at, a.name+": agent crashes", a.crash)
		w.At(end, a.name+": agent restarts with its memory", func() { a.restart(true) })
	default:
		w.At(at, a.name+": agent crashes", a.crash)
		w.At(end, a.name+": agent restarts without its memory", func() { a.restart(false) })
	}
}

// partition cuts links between at and end: one way or both ways.
func (s *schedule) partition(at, end time.Duration, oneWay bool) {
	w, r := s.w, s.r
	parties := 2 + len(w.agents)
	p := r.IntN(parties)
	q := (p + 1 + r.IntN(parties-1)) % parties
	var what string
	var pick func(from, to int) bool
	switch c := r.IntN(3); {
	case oneWay && c == 0:
		what, pick = fmt.Sprintf("link %s -> %s cut", partyName(w, p), partyName(w, q)), func(f, t int) bool { return f == p && t == q }
	case oneWay && c == 1:
		what, pick = partyName(w, p)+" muted (all it sends is lost)", func(f, _ int) bool { return f == p }
	case oneWay:
		what, pick = partyName(w, p)+" deafened (all it receives is lost)", func(_, t int) bool { return t == p }
	case c == 0:
		what, pick = fmt.Sprintf("link %s <-> %s cut", partyName(w, p), partyName(w, q)), func(f, t int) bool { return (f == p && t == q) || (f == q && t == p) }
	case c == 1:
		what, pick = partyName(w, p)+" isolated", func(f, t int) bool { return f == p || t == p }
	default:
		what, pick = "API server outage", func(f, t int) bool { return f == apiParty || t == apiParty }
	}
	var heal func()
	w.At(at, what, func() { heal = w.net.cutMany(pick) })
	w.At(end, "healed: "+what, func() { heal() })
}

// meddle has someone else write node's Lease every keepalive.
func (s *schedule) meddle(node int, at, end time.Duration) {
	w := s.w
	s.meddled = true
	every := w.cfg.Timing.Keepalive
	for t := at; t < end; t += every {
		w.At(t, "", func() { w.api.writeLease(node, "intruder") })
	}
	w.At(at, w.agents[node].name+"'s Lease written by someone else from now on", func() {})
}

// calm ends the chaos: no loss, no spikes; a random minority of fronts
// stays dead, paused or cut off for good.
func (s *schedule) calm() {
	w, r := s.w, s.r
	n := len(w.agents)
	broken := r.Perm(n)[:r.IntN((n-1)/2+1)]
	s.lost, s.shutDown = map[int]bool{}, map[int]bool{}
	w.At(s.calmAt, "calm: no more loss or delay spikes", func() {
		w.net.cfg.Loss, w.net.cfg.Spikes = 0, false
	})
	for _, i := range broken {
		a := w.agents[i]
		s.lost[i] = true
		switch r.IntN(4) {
		case 0:
			s.shutDown[i] = true
			w.At(s.calmAt, a.name+": power off for good, marked out of service", func() {
				a.powerOff()
				w.api.setOutOfService(i)
			})
		case 1:
			w.At(s.calmAt, a.name+": agent crashes for good", a.crash)
		case 2:
			w.At(s.calmAt, a.name+": SIGSTOP for good", a.pause)
		default:
			p := agentParty(i)
			w.At(s.calmAt, a.name+": isolated for good", func() {
				w.net.cutMany(func(f, t int) bool { return f == p || t == p })
			})
		}
	}
}

func partyName(w *World, p int) string {
	switch p {
	case apiParty:
		return "API server"
	case ctrlParty:
		return "controller"
	}
	return w.agents[p-2].name
}

func pick[T any](r *rand.Rand, choices ...T) T { return choices[r.IntN(len(choices))] }

// pickWeighted draws an index with the given weights.
func pickWeighted(r *rand.Rand, weights ...int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := r.IntN(total)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(weights) - 1
}

func randDur(r *rand.Rand, d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(r.Int64N(int64(d)))
}
