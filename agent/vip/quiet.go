package vip

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DefaultQuietWait bounds how long a planned hand-off waits for a moment
// when no connection to the address is in flight. The node serves all the
// while, so clients see no gap for it; under a load that never pauses (or
// with idle keep-alive connections), the connections in flight at its end
// are lost, as without it.
const DefaultQuietWait = 500 * time.Millisecond

// DiagFamilies are the netlink families a Manager's Handle needs: routes
// and addresses, and the sockets a planned hand-off waits for.
var DiagFamilies = []int{unix.NETLINK_ROUTE, unix.NETLINK_INET_DIAG}

// grantMargin is how long before its grant runs out a hand-off removes the
// address at the latest: the gate would drop the packets of a grant that
// ran out, where the forwarder passes them on.
const grantMargin = 50 * time.Millisecond

// quietPoll is how often the wait looks at the node's TCP sockets.
const quietPoll = 2 * time.Millisecond

// TCP states (include/net/tcp_states.h) in which a connection to the
// address may still need a packet from the client to deliver its answer:
// the handshake, the exchange, and our unacknowledged FIN. Once the
// address is gone, such a packet is passed on to the next holder, which
// resets the connection.
var inFlightStates = map[uint8]bool{
	1:  true, // ESTABLISHED
	3:  true, // SYN_RECV
	4:  true, // FIN_WAIT1
	8:  true, // CLOSE_WAIT
	9:  true, // LAST_ACK
	11: true, // CLOSING
	12: true, // NEW_SYN_RECV
}

// handshakeStates are those of inFlightStates that a kept copy of the
// address does not keep (keepConnections): a handshake in progress has
// no full socket yet, so the client's last packet of it is passed on.
var handshakeStates = map[uint8]bool{
	3:  true, // SYN_RECV
	12: true, // NEW_SYN_RECV
}

// handOff removes a at a quiet moment, beside the caller: it starts a run
// that waits, at most QuietWait, until no TCP connection to the address is
// in flight, and removes it there and then (one pass of the caller later,
// new connections would be in flight again). It reports whether that run
// is over; the caller then removes the address itself, which finds it gone
// unless the run failed.
func (m *Manager) handOff(ctx context.Context, a Address, link netlink.Link) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.handOffs[a.IP]
	if r != nil && r.epoch == a.Epoch {
		if ended, _ := r.finished(); !ended {
			return false
		}
		delete(m.handOffs, a.IP)
		return true
	}
	if r != nil {
		r.cancel()
	}
	// Not here, or here as a node address: Release's own removal does or
	// refuses it.
	if found, err := findAddr(m.Handle, link, a.IP); err != nil || len(found) == 0 || checkHostLength(found, link.Attrs().Name) != nil {
		return true
	}
	// Passed on from now: while the address is here the copies reach the
	// node's own stack, and from the moment it goes they wait for the next
	// holder, so that only the removal is left to do at the quiet moment.
	forwarded := m.forwardAway(ctx, link, a.IP)
	// The connections open when the address goes are kept from now on:
	// the wait is then only for handshakes in progress.
	states := inFlightStates
	if forwarded {
		if err := m.keepConnections(a.IP); err != nil {
			logr.FromContextOrDiscard(ctx).Error(err, "Keeping the connections of a failover address handed off; waiting for them instead", "address", a.IP)
		} else if m.kept[a.IP] != nil {
			states = handshakeStates
		}
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r = &run{epoch: a.Epoch, cancel: cancel, done: make(chan struct{}), forwarded: forwarded}
	if m.handOffs == nil {
		m.handOffs = make(map[netip.Addr]*run)
	}
	m.handOffs[a.IP] = r
	until := m.quietUntil(a.IP)
	go func() {
		defer close(r.done)
		defer cancel()
		if !m.removeWhenQuiet(rctx, link, a.IP, until, states) {
			return
		}
		// The address is gone: what is left is revoking and forgetting it,
		// unless the hand-off was stopped meanwhile (checked under the lock
		// that stopping takes): the node may hold the address again.
		m.mu.Lock()
		if rctx.Err() == nil {
			_, r.err = m.removeLocked(rctx, link, a.IP)
		}
		m.mu.Unlock()
		if r.err == nil && rctx.Err() == nil && m.HandedOff != nil {
			m.HandedOff()
		}
	}()
	return false
}

// stopHandOff cancels a hand-off of ip that waits for quiet, because the
// node holds ip again or must drop it at once, and reports whether there
// was one. The caller holds m.mu.
func (m *Manager) stopHandOff(ip netip.Addr) bool {
	r := m.handOffs[ip]
	if r == nil {
		return false
	}
	r.cancel()
	delete(m.handOffs, ip)
	return true
}

// quietUntil is when a hand-off of ip starting now stops waiting: after
// QuietWait, and before ip's grant runs out. The caller holds m.mu.
func (m *Manager) quietUntil(ip netip.Addr) time.Time {
	limit := m.QuietWait
	if limit <= 0 {
		limit = DefaultQuietWait
	}
	until := time.Now().Add(limit)
	if end, ok := m.grantEnds[ip]; ok && end.Add(-grantMargin).Before(until) {
		until = end.Add(-grantMargin)
	}
	return until
}

// removeWhenQuiet removes ip from link as soon as no TCP connection to it
// is in flight on the node, or at until, and logs how long it waited and
// what it left. The removal follows the last look at the sockets at once,
// under the lock, so that no connection can start in between but by a
// packet that comes during the removal itself. It reports false when ctx
// ended first (the hand-off was stopped).
func (m *Manager) removeWhenQuiet(ctx context.Context, link netlink.Link, ip netip.Addr, until time.Time, states map[uint8]bool) bool {
	start := time.Now()
	for {
		n, removed, err := m.removeIfQuiet(link, ip, until, states)
		if removed {
			log := logr.FromContextOrDiscard(ctx)
			if err != nil {
				log.Error(err, "Looking for connections in flight to a failover address; handed it off without waiting", "address", ip)
			}
			// Those that started while it went are cut too: seen here.
			after, _ := m.inFlight(ip, states)
			kept, _ := m.inFlight(ip, inFlightStates)
			log.Info("Handed off a failover address", "address", ip, "waited", time.Since(start).String(),
				"connectionsInFlight", n, "connectionsCut", after, "connectionsKept", kept-after)
			return true
		}
		if sleep(ctx, quietPoll) != nil {
			return false
		}
	}
}

// removeIfQuiet removes ip from link when no connection to it is in
// flight, the sockets cannot be read, or until has come; it reports what
// it saw and whether it removed the address (or tried: remove goes on).
func (m *Manager) removeIfQuiet(link netlink.Link, ip netip.Addr, until time.Time, states map[uint8]bool) (n int, removed bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err = m.inFlight(ip, states)
	if err == nil && n > 0 && time.Now().Before(until) {
		return n, false, nil
	}
	host := &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(ip.BitLen(), ip.BitLen())}
	// No announcement of this node's takeover may follow.
	m.stopTakeover(ip)
	// A failure is left to remove, which tries again and reports it.
	_ = m.Handle.AddrDel(link, &netlink.Addr{IPNet: host})
	return n, true, err
}

// inFlight counts the TCP connections to ip in one of states, over both
// families: a dual-stack listener holds IPv4 connections as IPv6 sockets.
func (m *Manager) inFlight(ip netip.Addr, states map[uint8]bool) (int, error) {
	n := 0
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := m.Handle.SocketDiagTCP(family)
		if err != nil {
			return 0, err
		}
		for _, s := range socks {
			local, ok := netip.AddrFromSlice(s.ID.Source)
			if ok && local.Unmap() == ip && states[s.State] {
				n++
			}
		}
	}
	return n, nil
}
