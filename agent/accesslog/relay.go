// Package accesslog carries HAProxy's access log from a unix datagram socket
// to a writer, the agent's stdout, so that `kubectl logs` shows every
// request. Neither side ever waits for the other: HAProxy sends without
// blocking and drops a line that finds the socket full or unbound, and the
// relay drops a line that finds its queue full, counting it.
package accesslog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/webfarm/webfarm/internal/linequeue"
)

// Relay defaults.
const (
	// DefaultQueue is how many lines wait for the writer before the relay
	// drops new ones.
	DefaultQueue = linequeue.DefaultSize
	// receiveBuffer absorbs bursts while the relay is descheduled; HAProxy
	// drops what does not fit.
	receiveBuffer = 4 << 20
	// maxLine is the longest datagram read whole (HAProxy's `len` is
	// smaller).
	maxLine = 16 << 10
)

// Relay reads access-log lines from its socket and writes them to its
// writer, one write per line.
type Relay struct {
	conn  *net.UnixConn
	path  string
	lines *linequeue.Queue
}

// Listen binds the unix datagram socket path, replacing a socket file that
// an earlier agent left there, with a queue of queue lines (DefaultQueue
// when not positive) in front of out.
func Listen(path string, out io.Writer, queue int) (*Relay, error) {
	if err := removeSocket(path); err != nil {
		return nil, err
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("listening for access logs on %s: %w", path, err)
	}
	// Best effort: a smaller buffer only drops more in a burst.
	_ = conn.SetReadBuffer(receiveBuffer)
	return &Relay{conn: conn, path: path, lines: linequeue.New(out, queue)}, nil
}

// removeSocket removes a socket left at path; anything else there is an
// error rather than something to delete.
func removeSocket(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.Mode().Type() != os.ModeSocket:
		return fmt.Errorf("access log socket %s: a file that is not a socket is in the way", path)
	}
	return os.Remove(path)
}

// Run relays lines until ctx is done, then closes and removes the socket.
func (r *Relay) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { r.conn.Close() })
	defer stop()
	defer os.Remove(r.path)
	defer r.lines.Close()
	return r.read(ctx)
}

// read receives datagrams and queues them, dropping what the writer has no
// room for.
func (r *Relay) read(ctx context.Context) error {
	buf := make([]byte, maxLine)
	for {
		n, _, err := r.conn.ReadFromUnix(buf)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("reading access logs: %w", err)
		}
		if err != nil || n == 0 {
			continue
		}
		line := make([]byte, n, n+1)
		copy(line, buf[:n])
		if line[n-1] != '\n' {
			line = append(line, '\n')
		}
		_, _ = r.lines.Write(line)
	}
}

// Written is how many lines reached the writer.
func (r *Relay) Written() uint64 { return r.lines.Written() }

// Dropped is how many lines the relay dropped: its queue was full or the
// writer failed. Lines HAProxy could not send are counted by HAProxy.
func (r *Relay) Dropped() uint64 { return r.lines.Dropped() }
