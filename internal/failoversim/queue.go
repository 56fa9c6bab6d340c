package failoversim

import "sync"

// eventQueue is the world's events in the order they run: by global time,
// then in the order they were scheduled. The heap holds only that order
// and the index of each event's body, so that sifting moves small
// pointer-free entries (no write barriers while the collector runs); it is
// 4-ary, half as deep as a binary one. A schedule runs thousands of events
// and has a few hundred pending at most.
type eventQueue struct {
	heap   []entry
	bodies []event
	free   []int32
	seq    uint64
}

// spare keeps the buffers of finished queues for the next worlds: the
// random schedules run one world after another on every core.
var spare sync.Pool

// newEventQueue is an empty queue, on a finished one's buffers if any.
func newEventQueue() eventQueue {
	if q, ok := spare.Get().(*eventQueue); ok {
		return eventQueue{heap: q.heap[:0], bodies: q.bodies[:0], free: q.free[:0]}
	}
	return eventQueue{}
}

// recycle gives the queue's buffers to the next world; the queue is
// empty after it.
func (q *eventQueue) recycle() {
	clear(q.bodies)
	spare.Put(&eventQueue{heap: q.heap, bodies: q.bodies, free: q.free})
	*q = eventQueue{}
}

// entry is one pending event's place in the order.
type entry struct {
	at   int64
	seq  uint64
	body int32
}

func (e entry) before(o entry) bool { return e.at < o.at || (e.at == o.at && e.seq < o.seq) }

func (q *eventQueue) len() int { return len(q.heap) }

// next is when the first pending event runs; only while len() > 0.
func (q *eventQueue) next() int64 { return q.heap[0].at }

// push schedules e at global time at.
func (q *eventQueue) push(at int64, e event) {
	var b int32
	if k := len(q.free); k > 0 {
		b = q.free[k-1]
		q.free = q.free[:k-1]
		q.bodies[b] = e
	} else {
		b = int32(len(q.bodies))
		q.bodies = append(q.bodies, e)
	}
	q.seq++
	q.heap = append(q.heap, entry{at: at, seq: q.seq, body: b})
	h := q.heap
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 4
		if !h[i].before(h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

// pop removes the first event and returns it with its time.
func (q *eventQueue) pop() (int64, event) {
	h := q.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	q.heap = h
	for i := 0; ; {
		m, c := i, 4*i+1
		for end := min(c+4, last); c < end; c++ {
			if h[c].before(h[m]) {
				m = c
			}
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	e := q.bodies[top.body]
	q.bodies[top.body] = event{}
	q.free = append(q.free, top.body)
	return top.at, e
}
