package failoversim

import "time"

// NetConfig is how every message travels: a one-way delay drawn uniformly
// in [MinDelay, MaxDelay] (so that datagrams reorder), with Spikes one in a
// hundred delayed ten times more, a loss and a duplication probability.
type NetConfig struct {
	MinDelay, MaxDelay time.Duration
	Spikes             bool
	Loss, Dup          float64
}

// Parties of the network: the API server, the controller, then the fronts.
const (
	apiParty  = 0
	ctrlParty = 1
)

func agentParty(i int) int { return 2 + i }

// network carries datagrams (peer heartbeats: lost, duplicated, reordered),
// requests to the API server and watch streams (TCP: ordered, and broken
// rather than lossy). A link from→to is down while any cut of it lasts, so
// that overlapping partitions compose; a stream needs both directions.
type network struct {
	w    *World
	cfg  NetConfig
	down [][]int
	// lag is, per link from→to, how much later than the drawn delay every
	// message on it arrives (a slow or queueing path).
	lag [][]int64
	// tail is, per stream, when its last message arrives: a stream
	// delivers in order.
	tail [][]int64
}

func newNetwork(w *World, parties int, cfg NetConfig) *network {
	n := &network{w: w, cfg: cfg, down: make([][]int, parties), lag: make([][]int64, parties), tail: make([][]int64, parties)}
	for i := range parties {
		n.down[i] = make([]int, parties)
		n.lag[i] = make([]int64, parties)
		n.tail[i] = make([]int64, parties)
	}
	return n
}

// delay draws how long a message sent now from→to takes.
func (n *network) delay(from, to int) int64 {
	lo, hi := int64(n.cfg.MinDelay), int64(n.cfg.MaxDelay)
	d := lo
	if hi > lo {
		d += n.w.rng.Int64N(hi - lo + 1)
	}
	if n.cfg.Spikes && n.w.rng.IntN(100) == 0 {
		d *= 10
	}
	return d + n.lag[from][to]
}

func (n *network) lost() bool { return n.cfg.Loss > 0 && n.w.rng.Float64() < n.cfg.Loss }

func (n *network) up(from, to int) bool { return n.down[from][to] == 0 }

func (n *network) connected(a, b int) bool { return n.up(a, b) && n.up(b, a) }

// cut takes the link from→to down until the returned heal runs.
func (n *network) cut(from, to int) (heal func()) {
	n.down[from][to]++
	return func() {
		n.down[from][to]--
		if n.down[from][to] == 0 {
			n.w.api.resync()
		}
	}
}

// slow delays every message on the link from→to by lag more, from now on.
func (n *network) slow(from, to int, lag time.Duration) { n.lag[from][to] += int64(lag) }

// cutMany cuts every pair (from, to) that pick accepts, from != to.
func (n *network) cutMany(pick func(from, to int) bool) (heal func()) {
	var heals []func()
	for from := range n.down {
		for to := range n.down {
			if from != to && pick(from, to) {
				heals = append(heals, n.cut(from, to))
			}
		}
	}
	return func() {
		for _, h := range heals {
			h()
		}
	}
}

// datagram sends one peer datagram from agent party from to agent party
// to; it arrives once, twice when duplicated, or never.
func (n *network) datagram(from, to int, d datagram) {
	copies := 1
	if n.cfg.Dup > 0 && n.w.rng.Float64() < n.cfg.Dup {
		copies = 2
	}
	for range copies {
		if !n.up(from, to) || n.lost() {
			continue
		}
		f := n.w.newFlight()
		f.n, f.from, f.to, f.d = n, from, to, d
		n.w.queue.push(n.w.now+n.delay(from, to), event{r: f})
	}
}

// flight is one copy of a datagram on its way.
type flight struct {
	n        *network
	from, to int
	d        datagram
}

// newFlight is a flight of those delivered, or a new one: a schedule
// sends thousands of datagrams and keeps none.
func (w *World) newFlight() *flight {
	if k := len(w.flights); k > 0 {
		f := w.flights[k-1]
		w.flights = w.flights[:k-1]
		return f
	}
	return new(flight)
}

// run hands the datagram to its receiver if the link is still up, and the
// flight back.
func (f *flight) run() {
	n, d := f.n, f.d
	up := n.up(f.from, f.to)
	b := n.w.agents[f.to-agentParty(0)]
	n.w.flights = append(n.w.flights, f)
	if up {
		b.deliverDatagram(d)
	}
}

// call sends a request from a party to the API server; handle runs there
// on arrival and returns the reply to carry back, or nil. Requests and
// replies keep their order, as on one HTTP/2 connection. A lost request or
// reply is never answered: the caller's timeout deals with it.
func (n *network) call(from int, handle func() (reply func())) {
	if !n.connected(from, apiParty) || n.lost() {
		return
	}
	n.w.at(n.inOrder(from, apiParty), "", func() {
		if !n.connected(from, apiParty) {
			return
		}
		reply := handle()
		if reply == nil || n.lost() {
			return
		}
		n.w.at(n.inOrder(apiParty, from), "", func() {
			if n.connected(from, apiParty) {
				reply()
			}
		})
	})
}

// inOrder is when a message sent now from→to arrives, after the ones
// sent before it.
func (n *network) inOrder(from, to int) int64 {
	at := max(n.tail[from][to], n.w.now+n.delay(from, to))
	n.tail[from][to] = at
	return at
}

// watchEvent is one message of the API server's watch stream to party: a
// snapshot for its observer, or the stream found broken on arrival.
type watchEvent struct {
	api   *apiServer
	party int
	o     observer
	s     *apiState
}

func (e *watchEvent) run() {
	if e.api.w.net.connected(apiParty, e.party) {
		e.o.watch(e.s)
	} else {
		e.api.stale[e.party] = true
	}
}
