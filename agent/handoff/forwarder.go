// Package handoff lets a node that gave up a failover address pass on, for
// a bounded time, the packets that still reach it for that address — sent
// by clients whose ARP or neighbour caches still name this node — to
// wherever the address lives now. The node does not answer for the address
// and does not take its packets as its own: it resolves the address on the
// link like any other neighbour, and the kernel queues the packets while
// nobody answers, until the next owner announces itself. A planned
// hand-off then loses no new connection to the time between the release
// and the announcement.
//
// The forwarder owns two tables named TableName (families ip and ip6) and
// never touches any other table or chain.
package handoff

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/webfarm/webfarm/internal/nftowner"
)

// Forwarder passes on the packets of addresses given up. It is safe for
// concurrent use.
type Forwarder struct {
	mu   sync.Mutex
	conn *nftables.Conn
	l    *layout
}

// New opens a forwarder in the caller's network namespace, or in the one
// given by nftables.WithNetNSFd. It changes nothing before Setup.
func New(opts ...nftables.ConnOption) (*Forwarder, error) {
	conn, err := nftables.New(append(opts, nftables.AsLasting())...)
	if err != nil {
		return nil, fmt.Errorf("opening nftables: %w", err)
	}
	return &Forwarder{conn: conn, l: newLayout()}, nil
}

// Close closes the forwarder's netlink socket; the kernel keeps its tables.
func (f *Forwarder) Close() error { return f.conn.CloseLasting() }

// Setup creates the tables, or brings existing ones back to their rules,
// keeping the elements that still count down.
func (f *Forwarder) Setup() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.setup(); err != nil {
		return fmt.Errorf("setting up the hand-off forwarder: %w", err)
	}
	return nil
}

// setup adds what is missing and rewrites the chains in one transaction.
func (f *Forwarder) setup() error {
	return nftowner.Write(f.conn, nftowner.Layout{Tables: f.l.tables(), Sets: f.l.sets(), Chains: f.l.chains(), Rules: f.l.rules()})
}

// Forward passes on, for window from now, the packets for ip that arrive
// on the link with index link, out of that same link. Only for an address
// in a subnet of that link, and not on the node: while it is
// the node's own, its copies would be delivered locally.
func (f *Forwarder) Forward(link int, ip netip.Addr, window time.Duration) error {
	if window < time.Millisecond {
		return fmt.Errorf("forwarding %s for %s: at least a millisecond, or it would never end", ip, window)
	}
	return f.apply(link, ip, "forwarding", func(s *nftables.Set, k []byte) error {
		return f.replace(s, k, window)
	})
}

// Stop stops passing on the packets for ip that arrive on link at once.
func (f *Forwarder) Stop(link int, ip netip.Addr) error {
	return f.apply(link, ip, "no longer forwarding", func(s *nftables.Set, k []byte) error {
		elem := []nftables.SetElement{{Key: k}}
		// Deleting an element that is not there fails the transaction.
		return errors.Join(f.conn.SetAddElements(s, elem), f.conn.SetDeleteElements(s, elem))
	})
}

// replace puts the element k into s with timeout window, whether or not it
// is there: adding an element that exists would keep its old timeout.
func (f *Forwarder) replace(s *nftables.Set, k []byte, window time.Duration) error {
	elem := []nftables.SetElement{{Key: k}}
	return errors.Join(
		f.conn.SetAddElements(s, elem),
		f.conn.SetDeleteElements(s, elem),
		f.conn.SetAddElements(s, []nftables.SetElement{{Key: k, Timeout: window}}),
	)
}

// apply queues change and commits it, setting the tables up again, once,
// if someone deleted them.
func (f *Forwarder) apply(link int, ip netip.Addr, what string, change func(s *nftables.Set, k []byte) error) error {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return fmt.Errorf("%s %s: not an address", what, ip)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	commit := func() error {
		if err := change(f.l.setOf(ip), key(link, ip)); err != nil {
			return err
		}
		return f.conn.Flush()
	}
	err := commit()
	if errors.Is(err, unix.ENOENT) {
		if err = f.setup(); err == nil {
			err = commit()
		}
	}
	if err != nil {
		return fmt.Errorf("%s %s on link %d: %w", what, ip, link, err)
	}
	return nil
}

// KeepMark is the mark on the packets of the connections the node still
// has to an address it forwards (the package's KeepMark).
func (f *Forwarder) KeepMark() uint32 { return KeepMark }

// Remove deletes the forwarder's tables, and with them every forwarding.
func (f *Forwarder) Remove() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := nftowner.Remove(f.conn, f.l.tables()...); err != nil {
		return fmt.Errorf("removing the hand-off forwarder: %w", err)
	}
	return nil
}
