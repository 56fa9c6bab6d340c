package linequeue

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"
)

// blockedWriter holds every write until released.
type blockedWriter struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockedWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func TestQueueNeverWaitsForItsWriter(t *testing.T) {
	w := &blockedWriter{release: make(chan struct{})}
	q := New(w, 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10 {
			fmt.Fprintf(q, "line %d\n", i)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writing to the queue waited for a blocked writer")
	}
	close(w.release)
	q.Close()
	// One line may be in the writer's hands, 4 in the queue: 5 or 4 kept.
	if got := q.Written() + q.Dropped(); got != 10 {
		t.Errorf("written %d + dropped %d = %d lines, want the 10 written", q.Written(), q.Dropped(), got)
	}
	if q.Written() < 4 || q.Written() > 5 {
		t.Errorf("written %d lines, want the queue's 4 and maybe one in flight", q.Written())
	}
	if !bytes.HasPrefix(w.buf.Bytes(), []byte("line 0\n")) {
		t.Errorf("the writer got %q, want the first lines in order", w.buf.String())
	}
}

func TestQueueKeepsEveryLineInOrderWhenItKeepsUp(t *testing.T) {
	var buf bytes.Buffer
	q := New(&buf, 0)
	var want bytes.Buffer
	for i := range 100 {
		line := fmt.Sprintf("line %d\n", i)
		want.WriteString(line)
		b := []byte(line)
		if _, err := q.Write(b); err != nil {
			t.Fatal(err)
		}
		b[0] = 'X' // the queue keeps its own copy
	}
	q.Close()
	if buf.String() != want.String() || q.Dropped() != 0 {
		t.Errorf("got %d bytes, %d dropped; want the 100 lines in order", buf.Len(), q.Dropped())
	}
	fmt.Fprintln(q, "after close")
	if q.Dropped() != 1 {
		t.Errorf("a line after Close: dropped %d, want 1", q.Dropped())
	}
}
