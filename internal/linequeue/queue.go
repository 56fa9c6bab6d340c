// Package linequeue puts a queue in front of a writer, so that a program
// that logs never waits for the disk or the pipe its log goes to. A full
// queue drops the line and counts it: on a node whose disk stalls for a
// second, the agent's decisions and heartbeats must keep their deadlines,
// and its log can afford a gap.
package linequeue

import (
	"io"
	"sync"
	"sync/atomic"
)

// DefaultSize is how many lines wait for the writer before new ones are
// dropped.
const DefaultSize = 4096

// Queue is an io.Writer that queues each Write, whole, for one goroutine
// that writes them to the writer behind it in order.
type Queue struct {
	out   io.Writer
	lines chan []byte
	done  chan struct{}

	// mu orders Close after the Writes it lets through.
	mu     sync.RWMutex
	closed bool

	written, dropped atomic.Uint64
}

// New starts a queue of size lines (DefaultSize when not positive) in
// front of out.
func New(out io.Writer, size int) *Queue {
	if size <= 0 {
		size = DefaultSize
	}
	q := &Queue{out: out, lines: make(chan []byte, size), done: make(chan struct{})}
	go q.drain()
	return q
}

// Write queues a copy of p and returns at once; when the queue is full or
// closed, p is dropped and counted. It never fails: a logger has nowhere
// to report that it could not log.
func (q *Queue) Write(p []byte) (int, error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		q.dropped.Add(1)
		return len(p), nil
	}
	select {
	case q.lines <- append([]byte(nil), p...):
	default:
		q.dropped.Add(1)
	}
	return len(p), nil
}

// Close stops taking lines and returns once those queued are written.
func (q *Queue) Close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.lines)
	}
	q.mu.Unlock()
	<-q.done
}

func (q *Queue) drain() {
	defer close(q.done)
	for line := range q.lines {
		if _, err := q.out.Write(line); err != nil {
			q.dropped.Add(1)
			continue
		}
		q.written.Add(1)
	}
}

// Written is how many lines reached the writer.
func (q *Queue) Written() uint64 { return q.written.Load() }

// Dropped is how many lines did not: the queue was full or closed, or the
// writer failed.
func (q *Queue) Dropped() uint64 { return q.dropped.Load() }
