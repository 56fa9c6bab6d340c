package vip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Forwarder passes on, for a bounded time, the packets that still reach the
// node for an address it gave up, to wherever the address lives now
// (agent/handoff.Forwarder).
type Forwarder interface {
	// Forward passes on the packets for ip that arrive on the link with
	// index link, out of that link, for window from now.
	Forward(link int, ip netip.Addr, window time.Duration) error
	// Stop ends that at once.
	Stop(link int, ip netip.Addr) error
	// KeepMark is the mark it puts, instead of passing them on, on the
	// packets of the connections the node still has to an address it
	// forwards; 0 if it passes those on too.
	KeepMark() uint32
}

// DefaultForwardWindow is how long a node passes on the packets of an
// address it released: far longer than a planned hand-off takes to
// announce the address elsewhere (a fraction of a second), and long enough
// for a client that missed the announcements to resolve the address again
// (a Linux neighbour entry is checked again 5 s after it went stale).
const DefaultForwardWindow = 10 * time.Second

// forwardAway starts passing on the packets for ip, which is on link, if
// the manager has a Forwarder and ip lies in a subnet of link, so that its
// next holder is a neighbour there. It reports whether it did: a release
// goes on without it, as if the node had no forwarder. The caller holds
// m.mu.
func (m *Manager) forwardAway(ctx context.Context, link netlink.Link, ip netip.Addr) bool {
	if m.Forwarder == nil {
		return false
	}
	on, err := onLink(m.Handle, link, ip)
	if err == nil && !on {
		return false
	}
	if err == nil {
		err = m.forgetNeighbour(link, ip)
	}
	if err == nil {
		err = m.Forwarder.Forward(link.Attrs().Index, ip, m.forwardWindow())
	}
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Passing on the packets of a released failover address; releasing without", "address", ip)
		return false
	}
	return true
}

// forgetNeighbour deletes the node's neighbour entry for ip on link, left
// from before the node last held ip: it names a node that held ip then, and
// the copies must wait for whoever holds it next, not go there (that node,
// forwarding too, could send them back).
func (m *Manager) forgetNeighbour(link netlink.Link, ip netip.Addr) error {
	err := m.Handle.NeighDel(&netlink.Neigh{LinkIndex: link.Attrs().Index, Family: family(ip), IP: ip.AsSlice()})
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("deleting the neighbour entry of %s: %w", ip, err)
	}
	return nil
}

// stopForwarding ends the passing on of ip's packets before the node holds
// ip again: they must reach its own stack. The caller holds m.mu.
func (m *Manager) stopForwarding(link netlink.Link, ip netip.Addr) error {
	if m.Forwarder == nil {
		return nil
	}
	return m.Forwarder.Stop(link.Attrs().Index, ip)
}

// onLink reports whether ip lies in the subnet of one of link's own
// addresses (not a host-length one), so that the link reaches it directly.
func onLink(h *netlink.Handle, link netlink.Link, ip netip.Addr) (bool, error) {
	addrs, err := h.AddrList(link, family(ip))
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		ones, _ := a.Mask.Size()
		if !isHostLength(a) && netip.PrefixFrom(addrOf(a), ones).Contains(ip) {
			return true, nil
		}
	}
	return false, nil
}
