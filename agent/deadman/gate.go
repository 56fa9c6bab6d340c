// Package deadman is the kernel's side of a failover address's grant: an
// nftables gate that lets the node answer for an address (ARP, neighbour
// discovery, traffic) only while the agent keeps refreshing its grant. What
// the agent stops refreshing — because it crashed, stalled or was paused —
// falls silent on its own when the grant runs out.
//
// The gate owns two tables named TableName (families arp and inet) and
// never touches any other table or chain.
package deadman

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

// Gate lets the node answer for a managed address only while its grant
// lasts. It is safe for concurrent use.
type Gate struct {
	mu   sync.Mutex
	conn *nftables.Conn
	l    *layout
	// resync is how often a change rewrites the gate's rules too, in the
	// same transaction, repairing chains that someone flushed.
	resync  time.Duration
	setupAt time.Time
}

// defaultResync paces the rewrites of the rules: seldom enough to cost
// nothing, often enough that rules flushed by hand come back soon.
const defaultResync = 10 * time.Second

// New opens a gate in the caller's network namespace, or in the one given
// by nftables.WithNetNSFd. It changes nothing before Setup.
func New(opts ...nftables.ConnOption) (*Gate, error) {
	conn, err := nftables.New(append(opts, nftables.AsLasting())...)
	if err != nil {
		return nil, fmt.Errorf("opening nftables: %w", err)
	}
	return &Gate{conn: conn, l: newLayout(), resync: defaultResync}, nil
}

// Close closes the gate's netlink socket; the kernel keeps the gate.
func (g *Gate) Close() error { return g.conn.CloseLasting() }

// Setup creates the gate, or brings an existing one back to its rules. It
// keeps the elements of existing sets: a restarted agent goes on counting
// down its predecessor's grants, and refreshes them. A gate whose sets do
// not match (an older layout) is replaced, which ends every grant at once.
func (g *Gate) Setup() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	err := g.setup()
	if err == nil {
		return nil
	}
	if err := g.remove(); err != nil {
		return fmt.Errorf("replacing the nftables gate: %w", err)
	}
	if err := g.setup(); err != nil {
		return fmt.Errorf("setting up the nftables gate: %w", err)
	}
	return nil
}

// setup adds what is missing and rewrites the chains, in one transaction.
func (g *Gate) setup() error {
	l := newLayout()
	tables := []*nftables.Table{l.arp, l.inet}
	if err := nftowner.Write(g.conn, nftowner.Layout{Tables: tables, Sets: l.sets(), Chains: l.chains(), Rules: l.rules()}); err != nil {
		return err
	}
	g.l, g.setupAt = l, time.Now()
	return nil
}

// Remove deletes the gate: every managed address answers again, which is
// right only once the agent removed them all.
func (g *Gate) Remove() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.remove(); err != nil {
		return fmt.Errorf("removing the nftables gate: %w", err)
	}
	return nil
}

func (g *Gate) remove() error { return nftowner.Remove(g.conn, g.l.arp, g.l.inet) }

// MinGrant is the shortest grant: the kernel counts timeouts in
// milliseconds, and an element without one would never expire.
const MinGrant = time.Millisecond

// Allow manages ip and lets the node answer for it for grant from now,
// replacing any earlier grant, in one transaction.
func (g *Gate) Allow(ip netip.Addr, grant time.Duration) error {
	if grant < MinGrant {
		return fmt.Errorf("allowing %s for %s: a grant is at least %s", ip, grant, MinGrant)
	}
	return g.apply(ip, "allowing", func(managed, allowed *nftables.Set, elem []nftables.SetElement) error {
		granted := []nftables.SetElement{{Key: elem[0].Key, Timeout: grant}}
		return firstErr(
			g.conn.SetAddElements(managed, elem),
			g.replace(allowed, elem, granted),
		)
	})
}

// Revoke ends ip's grant at once; ip stays managed, so the node does not
// answer for it.
func (g *Gate) Revoke(ip netip.Addr) error {
	return g.apply(ip, "revoking", func(managed, allowed *nftables.Set, elem []nftables.SetElement) error {
		return firstErr(
			g.conn.SetAddElements(managed, elem),
			g.drop(allowed, elem),
		)
	})
}

// Forget stops managing ip: the gate no longer concerns itself with it.
// Only for an address that is not on the node.
func (g *Gate) Forget(ip netip.Addr) error {
	return g.apply(ip, "forgetting", func(managed, allowed *nftables.Set, elem []nftables.SetElement) error {
		return firstErr(g.drop(allowed, elem), g.drop(managed, elem))
	})
}

// apply queues change for every table that holds ip and commits them in
// one transaction. A gate whose tables or sets someone deleted (`nft flush
// ruleset`) is set up again, once: otherwise its addresses would answer
// without a grant. Every resync, the rules are rewritten first.
func (g *Gate) apply(ip netip.Addr, what string, change func(managed, allowed *nftables.Set, elem []nftables.SetElement) error) error {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return fmt.Errorf("%s %s in the nftables gate: not an address", what, ip)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var err error
	if time.Since(g.setupAt) >= g.resync {
		err = g.setup()
	}
	if err == nil {
		err = g.commit(ip, change)
	}
	if errors.Is(err, unix.ENOENT) {
		if err = g.setup(); err == nil {
			err = g.commit(ip, change)
		}
	}
	if err != nil {
		return fmt.Errorf("%s %s in the nftables gate: %w", what, ip, err)
	}
	return nil
}

func (g *Gate) commit(ip netip.Addr, change func(managed, allowed *nftables.Set, elem []nftables.SetElement) error) error {
	elem := []nftables.SetElement{{Key: ip.AsSlice()}}
	managed, allowed := g.l.setsOf(ip)
	for i := range managed {
		if err := change(managed[i], allowed[i], elem); err != nil {
			return err
		}
	}
	return g.conn.Flush()
}

// replace puts elem into s as with, whether or not it is there: adding an
// element that exists changes nothing, and deleting one that does not
// fails the transaction, so it is added, deleted and added again.
func (g *Gate) replace(s *nftables.Set, elem, with []nftables.SetElement) error {
	return firstErr(g.drop(s, elem), g.conn.SetAddElements(s, with))
}

// drop removes elem from s whether or not it is there.
func (g *Gate) drop(s *nftables.Set, elem []nftables.SetElement) error {
	return firstErr(g.conn.SetAddElements(s, elem), g.conn.SetDeleteElements(s, elem))
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
