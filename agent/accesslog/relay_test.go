package accesslog

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// lockedBuffer is a writer the test reads while the relay writes; when gate
// is set, each Write waits for it to close.
type lockedBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	gate chan struct{}
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	if b.gate != nil {
		<-b.gate
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startRelay runs a relay until t ends or stop is called, which returns
// what Run returned.
func startRelay(t *testing.T, path string, out *lockedBuffer, queue int) (r *Relay, stop func() error) {
	t.Helper()
	r, err := Listen(path, out, queue)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stop = sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() { _ = stop() })
	return r, stop
}

func send(t *testing.T, path string, lines ...string) {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, l := range lines {
		if _, err := c.Write([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 5*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func TestRelayWritesOneLinePerDatagram(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.sock")
	out := &lockedBuffer{}
	r, _ := startRelay(t, path, out, 0)
	send(t, path, "first request\n", "second request without newline", "")
	want := "first request\nsecond request without newline\n"
	waitFor(t, "two lines", func() bool { return r.Written() == 2 })
	if got := out.String(); got != want {
		t.Fatalf("relayed %q, want %q", got, want)
	}
	if r.Dropped() != 0 {
		t.Fatalf("dropped %d lines", r.Dropped())
	}
}

// A writer that blocks costs lines, never the reader: the queue fills, the
// rest is dropped and counted, and the queued lines follow once it unblocks.
func TestRelayDropsWhenTheWriterBlocks(t *testing.T) {
	const queue, sent = 8, 50
	path := filepath.Join(t.TempDir(), "log.sock")
	out := &lockedBuffer{gate: make(chan struct{})}
	r, _ := startRelay(t, path, out, queue)
	lines := make([]string, sent)
	for i := range lines {
		lines[i] = fmt.Sprintf("request %d\n", i)
	}
	send(t, path, lines...)
	// One line is held by the blocked Write, queue lines wait.
	waitFor(t, "the lines beyond the queue dropped", func() bool { return r.Dropped() == sent-queue-1 })
	close(out.gate)
	waitFor(t, "the queued lines written", func() bool { return r.Written() == queue+1 })
	if r.Dropped() != sent-queue-1 {
		t.Fatalf("dropped %d, want %d", r.Dropped(), sent-queue-1)
	}
}

// A restarted agent takes over the socket its predecessor left.
func TestRelayReplacesAStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.sock")
	_, stop := startRelay(t, path, &lockedBuffer{}, 0)
	stale, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path + ".stale", Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	stale.Close()
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket left after Run: %v", err)
	}
	if err := os.Rename(path+".stale", path); err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	r, _ := startRelay(t, path, out, 0)
	send(t, path, "after restart\n")
	waitFor(t, "the line", func() bool { return r.Written() == 1 })
}

func TestListenRefusesToReplaceAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.sock")
	if err := os.WriteFile(path, []byte("not a socket"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path, &lockedBuffer{}, 0); err == nil {
		t.Fatal("Listen replaced a regular file")
	}
}
