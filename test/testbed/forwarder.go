package testbed

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// forwarder relays TCP connections from a listener opened inside a front's
// namespace (127.0.0.1:6443 there) to the API server in the root namespace.
// The front's agent sees an API server on its own loopback, and TLS verifies
// end to end because the bytes pass through untouched. Cut isolates the
// front from the API server without touching its network: open connections
// are closed and new ones are accepted and closed at once.
type forwarder struct {
	listener net.Listener
	target   string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	done  chan struct{}
}

// forwardedAPIAddress is the API server's address as a front sees it.
const forwardedAPIAddress = "127.0.0.1:6443"

// newForwarder listens on address inside namespace nsName (the root
// namespace when empty) and relays to target.
func newForwarder(nsName, address, target string) (*forwarder, error) {
	var l net.Listener
	listen := func() error {
		var err error
		l, err = net.Listen("tcp", address)
		return err
	}
	var err error
	if nsName == "" {
		err = listen()
	} else {
		// The socket belongs to the namespace of the thread that opens it and
		// stays there; the thread then returns to the root namespace.
		err = ns(nsName).Do(listen)
	}
	if err != nil {
		return nil, fmt.Errorf("listening on %s in %q: %w", address, nsName, err)
	}
	f := &forwarder{listener: l, target: target, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	go f.serve()
	return f, nil
}

// Address is the listener's address (useful when the port was 0).
func (f *forwarder) Address() string { return f.listener.Addr().String() }

func (f *forwarder) serve() {
	defer close(f.done)
	for {
		c, err := f.listener.Accept()
		if err != nil {
			return
		}
		if !f.track(c) {
			c.Close()
			continue
		}
		go f.relay(c)
	}
}

// track records an accepted connection; false when the forwarder is cut.
func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cut {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.conns, c)
}

func (f *forwarder) relay(client net.Conn) {
	defer f.untrack(client)
	defer client.Close()
	upstream, err := net.Dial("tcp", f.target)
	if err != nil {
		return
	}
	if !f.track(upstream) {
		upstream.Close()
		return
	}
	defer f.untrack(upstream)
	defer upstream.Close()
	copied := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		copied <- struct{}{}
	}
	go pipe(upstream, client)
	go pipe(client, upstream)
	// Either direction ending ends both: the deferred closes unblock the other.
	<-copied
}

// Cut closes every relayed connection and refuses new ones until Restore.
func (f *forwarder) Cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut = true
	for c := range f.conns {
		c.Close()
	}
	clear(f.conns)
}

// Restore lets connections through again.
func (f *forwarder) Restore() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut = false
}

// IsCut reports whether the forwarder is cut.
func (f *forwarder) IsCut() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cut
}

// Close stops listening and closes every connection.
func (f *forwarder) Close() error {
	f.Cut()
	err := f.listener.Close()
	<-f.done
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
