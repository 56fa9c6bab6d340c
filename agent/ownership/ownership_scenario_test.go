package ownership

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// The scenarios below run three agents and a controller on a simulated clock,
// every agent deciding with Decide every tick, and check the first safety rule
// at every tick: never two nodes holding the address at once.

const tick = 50 * time.Millisecond

type simNode struct {
	name  string
	mem   Memory
	view  Status
	lease time.Time
	heard map[string]Peer
	// tokens is, per peer, the latest token (the peer's send time) this
	// node received from it, and when.
	tokens   map[string]token
	promised time.Time
	apiUp    bool
	netUp    bool
	// mute loses every packet the node sends, and nothing it receives.
	mute    bool
	reports map[int64]Action // what its FrontNode status says, by epoch
}

type token struct{ sent, heard time.Time }

// datagram is one heartbeat in flight: the sender's token is its send time,
// and ack echoes the latest token the sender received from the receiver.
type datagram struct {
	from, to     string
	sent, arrive time.Time
	holding      bool
	seenOwner    string
	seenEpoch    int64
	ack          time.Time
}

type sim struct {
	t       *testing.T
	now     time.Time
	status  Status
	nodes   []*simNode
	dropped map[[2]string]bool          // links from→to that lose every packet
	delay   map[[2]string]time.Duration // links from→to that deliver late
	flying  []datagram
	// controllerUp is false while the controller or the API server is down.
	controllerUp bool
}

func newSim(t *testing.T, names ...string) *sim {
	s := &sim{t: t, now: t0, controllerUp: true, dropped: map[[2]string]bool{}, delay: map[[2]string]time.Duration{}}
	if len(names) == 0 {
		names = []string{"front1", "front2", "front3"}
	}
	s.status = Status{Owner: "front1", Epoch: 1, Candidates: names}
	for _, n := range names {
		s.nodes = append(s.nodes, &simNode{name: n, apiUp: true, netUp: true, heard: map[string]Peer{},
			tokens: map[string]token{}, reports: map[int64]Action{}})
	}
	return s
}

func (s *sim) node(name string) *simNode {
	for _, n := range s.nodes {
		if n.name == name {
			return n
		}
	}
	s.t.Fatalf("no node %s", name)
	return nil
}

// run advances the simulation by d, failing the test if two nodes ever hold
// the address together.
func (s *sim) run(d time.Duration) {
	s.t.Helper()
	for end := s.now.Add(d); s.now.Before(end); s.now = s.now.Add(tick) {
		s.reachAPI()
		if s.now.Sub(t0)%timing.Keepalive == 0 {
			s.heartbeat()
		}
		s.deliver()
		for _, n := range s.nodes {
			s.decide(n)
		}
		if s.controllerUp {
			s.control()
		}
		if h := s.holders(); len(h) > 1 {
			s.t.Fatalf("at +%v %v hold the address together (status %+v)", s.now.Sub(t0), h, s.status)
		}
	}
}

func (s *sim) reachAPI() {
	for _, n := range s.nodes {
		if n.apiUp {
			n.lease, n.view = s.now, s.status
		}
	}
}

// heartbeat sends every node's heartbeat to every other node, as the agent
// does: to every front that may hold the address.
func (s *sim) heartbeat() {
	for _, from := range s.nodes {
		for _, to := range s.nodes {
			if from == to || !from.netUp || from.mute || s.dropped[[2]string{from.name, to.name}] {
				continue
			}
			d := datagram{from: from.name, to: to.name, sent: s.now, arrive: s.now.Add(s.delay[[2]string{from.name, to.name}]),
				holding: from.mem.Holding, seenOwner: from.view.Owner, seenEpoch: from.view.Epoch}
			if tok, ok := from.tokens[to.name]; ok {
				d.ack = tok.sent
				// A report that confirms the receiver's ownership is a
				// promise, made before it is sent.
				if !d.holding && d.seenOwner == to.name && tok.heard.After(from.promised) {
					from.promised = tok.heard
				}
			}
			s.flying = append(s.flying, d)
		}
	}
}

// deliver hands over the datagrams due by now, refusing, as the replay guard
// does, one older than the last accepted from the same sender.
func (s *sim) deliver() {
	var later []datagram
	for _, d := range s.flying {
		if d.arrive.After(s.now) {
			later = append(later, d)
			continue
		}
		to := s.node(d.to)
		if !to.netUp || !d.sent.After(to.tokens[d.from].sent) {
			continue
		}
		p := to.heard[d.from]
		p.Node, p.LastHeard, p.SeenOwner, p.SeenEpoch, p.Confirmed = d.from, s.now, d.seenOwner, d.seenEpoch, d.ack
		if d.holding {
			p.LastClaimed = s.now
		}
		to.heard[d.from] = p
		to.tokens[d.from] = token{sent: d.sent, heard: s.now}
	}
	s.flying = later
}

func (s *sim) decide(n *simNode) {
	in := Input{Node: n.name, Address: "10.0.0.100", Status: n.view, Timing: timing,
		Memory: n.mem, LastLeaseRenewal: n.lease, Promised: n.promised, Now: s.now}
	for _, p := range n.heard {
		in.Peers = append(in.Peers, p)
	}
	d := Decide(in)
	n.mem = n.mem.After(d, s.now)
	if n.apiUp {
		n.reports[d.Epoch] = d.Action
	}
}

// control moves the address as the controller does: at once after a release,
// after deadtime+guard of Lease silence otherwise.
func (s *sim) control() {
	owner := s.node(s.status.Owner)
	switch {
	case owner.reports[s.status.Epoch] == Release:
		s.moveTo(s.next(owner.name), true)
	case s.now.Sub(owner.lease) >= timing.Deadtime+timing.Guard:
		s.moveTo(s.next(owner.name), false)
	}
}

func (s *sim) next(from string) string {
	for _, n := range s.nodes {
		if n.name != from && s.now.Sub(n.lease) < timing.Deadtime {
			return n.name
		}
	}
	return ""
}

func (s *sim) moveTo(owner string, released bool) {
	if owner == "" {
		return
	}
	s.status = Status{Owner: owner, Epoch: s.status.Epoch + 1, PreviousOwner: s.status.Owner,
		PreviousOwnerReleased: released, Candidates: s.status.Candidates}
}

func (s *sim) holders() []string {
	var h []string
	for _, n := range s.nodes {
		if n.mem.Holding {
			h = append(h, n.name)
		}
	}
	return h
}

func (s *sim) wantHolder(name string) {
	s.t.Helper()
	if h := s.holders(); !slices.Equal(h, []string{name}) {
		s.t.Fatalf("at +%v holders are %v, want %s (status %+v)", s.now.Sub(t0), h, name, s.status)
	}
}

func TestScenarioStartUp(t *testing.T) {
	s := newSim(t)
	s.run(timing.Deadtime - tick)
	if h := s.holders(); len(h) != 0 {
		t.Fatalf("%v announced before listening for deadtime", h)
	}
	s.run(2 * tick)
	s.wantHolder("front1")
}

func TestScenarioOwnerIsolated(t *testing.T) {
	s := newSim(t)
	s.run(5 * time.Second)
	s.wantHolder("front1")
	// front1 loses the API server and its peers, but keeps running.
	a := s.node("front1")
	a.apiUp, a.netUp = false, false
	s.run(timing.Deadtime - timing.Guard + tick)
	if a.mem.Holding {
		t.Fatal("front1 still holds the address after deadtime-guard alone")
	}
	s.run(5 * time.Second)
	s.wantHolder("front2")
}

func TestScenarioOwnerLosesOnlyTheAPI(t *testing.T) {
	s := newSim(t)
	s.run(5 * time.Second)
	s.node("front1").apiUp = false
	s.run(time.Second)
	s.wantHolder("front1")
	// The controller moves the address; front2 tells front1, which drops it,
	// and announces deadtime after front1's last claim.
	s.run(10 * time.Second)
	s.wantHolder("front2")
}

func TestScenarioAPIOutageKeepsServing(t *testing.T) {
	s := newSim(t)
	s.run(5 * time.Second)
	s.controllerUp = false
	for _, n := range s.nodes {
		n.apiUp = false
	}
	s.run(time.Minute)
	s.wantHolder("front1")
	// A candidate falls silent during the outage: nobody can prove that it
	// was not given the address, so the owner fences.
	s.node("front3").netUp = false
	s.run(timing.Deadtime)
	if h := s.holders(); len(h) != 0 {
		t.Fatalf("%v still hold the address with neither Lease nor every peer", h)
	}
}

func TestScenarioOwnerDeafToOnePeer(t *testing.T) {
	s := newSim(t)
	s.run(5 * time.Second)
	s.node("front1").apiUp = false
	s.dropped[[2]string{"front2", "front1"}] = true
	s.dropped[[2]string{"front3", "front1"}] = true
	s.run(10 * time.Second)
	s.wantHolder("front2")
}

func TestScenarioPlannedHandOff(t *testing.T) {
	s := newSim(t)
	s.run(5 * time.Second)
	s.status.ReleaseRequested = true
	s.run(4 * tick)
	s.wantHolder("front2")
	if s.node("front2").mem.HeldEpoch != 2 {
		t.Errorf("front2 holds at epoch %d, want 2", s.node("front2").mem.HeldEpoch)
	}
}

// runUntil runs the simulation until cond holds, failing the test if it
// does not within limit, and returns how long that took.
func (s *sim) runUntil(cond func() bool, limit time.Duration) time.Duration {
	s.t.Helper()
	start := s.now
	for !cond() {
		if s.now.Sub(start) > limit {
			s.t.Fatalf("nothing happened within %v (status %+v, holders %v)", limit, s.status, s.holders())
		}
		s.run(tick)
	}
	return s.now.Sub(start)
}

// A mute owner loses every packet it sends, to the API server too, but
// still hears its peers, whose datagrams may reach it late. It must stop
// holding before the new owner announces, whatever the delay.
func TestScenarioMuteOwnerTwoFronts(t *testing.T) {
	testMuteOwner(t, "front1", "front2")
}

func TestScenarioMuteOwnerThreeFronts(t *testing.T) {
	testMuteOwner(t, "front1", "front2", "front3")
}

func testMuteOwner(t *testing.T, names ...string) {
	for _, delay := range []time.Duration{0, tick, timing.Keepalive + tick, time.Second, 3 * time.Second} {
		t.Run(fmt.Sprintf("peers reach it %v late", delay), func(t *testing.T) {
			s := newSim(t, names...)
			s.run(5 * time.Second)
			s.wantHolder("front1")
			o := s.node("front1")
			o.apiUp, o.mute = false, true
			for _, n := range names[1:] {
				s.delay[[2]string{n, "front1"}] = delay
			}
			took := s.runUntil(func() bool { return s.node("front2").mem.Holding }, 10*time.Second)
			t.Logf("front2 announced %v after front1 went mute (deadtime+guard is %v)", took, timing.Deadtime+timing.Guard)
			s.run(5 * time.Second)
			s.wantHolder("front2")
		})
	}
}

// An owner that lost only the API server keeps hearing its peers, late: a
// late datagram proves the peer's word only from when the owner asked for
// it, so the delay can shorten the owner's proof, never extend it.
func TestScenarioDelayedDatagramsOnlyShortenTheProof(t *testing.T) {
	for _, delay := range []time.Duration{tick, timing.Keepalive + tick, time.Second, 3 * time.Second} {
		t.Run(fmt.Sprintf("peers reach it %v late", delay), func(t *testing.T) {
			s := newSim(t)
			s.run(5 * time.Second)
			s.wantHolder("front1")
			s.node("front1").apiUp = false
			s.delay[[2]string{"front2", "front1"}] = delay
			s.delay[[2]string{"front3", "front1"}] = delay
			took := s.runUntil(func() bool { return s.node("front2").mem.Holding }, 10*time.Second)
			t.Logf("front2 announced %v after front1 lost the API server", took)
			s.run(5 * time.Second)
			s.wantHolder("front2")
		})
	}
}
