package vip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A planned hand-off keeps the connections open to the address when it
// goes: their packets, which the forwarder marks (Forwarder.KeepMark)
// instead of passing them on, still reach the node's own sockets, and the
// sockets can still answer from the address. For that the node keeps a
// copy of the address on the loopback link, whose local route lives in
// keepTable rather than in the local table: only the marked packets are
// routed there (a rule, keepRulePriority, after the local table and
// before main). Without a local route in the tables every packet and ARP
// request sees, the node answers no ARP or neighbour solicitation for the
// address and takes no new connection to it (their packets are passed on
// to the next holder). The copy goes with the forwarding (ForwardWindow),
// or before the node holds the address again.
const (
	// keepTable is the routing table of the kept copies' local routes.
	keepTable = 0x5746 // "WF"
	// keepRulePriority places the rule after the local table (0) and
	// before main (32766).
	keepRulePriority = 32000
)

// loopback is the link the kept copies live on.
const loopback = "lo"

// keepConnections keeps ip on the node for the connections open to it,
// before it goes from its link: a copy on the loopback link, routed only
// to marked packets. It does nothing without a forwarder that marks them.
// The caller holds m.mu.
func (m *Manager) keepConnections(ip netip.Addr) error {
	if m.Forwarder == nil || m.Forwarder.KeepMark() == 0 {
		return nil
	}
	lo, err := m.Handle.LinkByName(loopback)
	if err != nil {
		return fmt.Errorf("keeping the connections to %s: %w", ip, err)
	}
	if err := m.ensureKeepRule(ip); err != nil {
		return err
	}
	// The keep table's route first, then the copy, whose local route
	// leaves the local table at once: the address is still on its link.
	if err := m.Handle.RouteReplace(localRoute(lo, ip, keepTable)); err != nil {
		return fmt.Errorf("routing the kept connections to %s: %w", ip, err)
	}
	if err := m.Handle.AddrAdd(lo, hostAddr(loopback, ip)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("keeping a copy of %s on %s: %w", ip, loopback, err)
	}
	if err := m.Handle.RouteDel(localRoute(lo, ip, unix.RT_TABLE_LOCAL)); err != nil && !errors.Is(err, unix.ESRCH) {
		return errors.Join(fmt.Errorf("taking the copy of %s out of the local table: %w", ip, err), m.dropKept(ip))
	}
	m.expireKept(ip)
	return nil
}

// expireKept drops the kept copy of ip once the forwarding ends. The
// caller holds m.mu.
func (m *Manager) expireKept(ip netip.Addr) {
	if m.kept == nil {
		m.kept = make(map[netip.Addr]*time.Timer)
	}
	if t := m.kept[ip]; t != nil {
		t.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(m.forwardWindow(), func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		// Not held again since (add drops the copy and its timer): the
		// record's entry went with the copy.
		if m.kept[ip] == t && m.dropKept(ip) == nil {
			_ = m.record().remove(ip)
		}
	})
	m.kept[ip] = t
}

// dropKept removes the kept copy of ip and its route, if any, but not its
// record's entry: the caller knows whether ip is still on its link. The
// caller holds m.mu.
func (m *Manager) dropKept(ip netip.Addr) error {
	if t := m.kept[ip]; t != nil {
		t.Stop()
		delete(m.kept, ip)
	}
	lo, err := m.Handle.LinkByName(loopback)
	if err != nil {
		return fmt.Errorf("dropping the kept copy of %s: %w", ip, err)
	}
	var errs []error
	if err := m.Handle.AddrDel(lo, hostAddr(loopback, ip)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		errs = append(errs, fmt.Errorf("removing the kept copy of %s: %w", ip, err))
	}
	if err := m.Handle.RouteDel(localRoute(lo, ip, keepTable)); err != nil && !errors.Is(err, unix.ESRCH) {
		errs = append(errs, fmt.Errorf("removing the route of the kept copy of %s: %w", ip, err))
	}
	return errors.Join(errs...)
}

// ensureKeepRule adds, once per family, the rule that routes the marked
// packets by keepTable.
func (m *Manager) ensureKeepRule(ip netip.Addr) error {
	err := m.Handle.RuleAdd(m.keepRule(family(ip)))
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("adding the rule of the kept connections: %w", err)
	}
	return nil
}

// removeKeepRules removes the rules of both families, whatever their
// mark, for Cleanup.
func (m *Manager) removeKeepRules() error {
	var errs []error
	for _, f := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := m.Handle.RuleList(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing rules: %w", err))
			continue
		}
		for _, r := range rules {
			if r.Table == keepTable && r.Priority == keepRulePriority {
				if err := m.Handle.RuleDel(&r); err != nil && !errors.Is(err, unix.ENOENT) {
					errs = append(errs, fmt.Errorf("removing the rule of the kept connections: %w", err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) keepRule(family int) *netlink.Rule {
	r := netlink.NewRule()
	r.Family = family
	r.Priority = keepRulePriority
	r.Table = keepTable
	mark := m.Forwarder.KeepMark()
	r.Mark, r.Mask = mark, &mark
	return r
}

// localRoute is the local route of ip on link in table.
func localRoute(link netlink.Link, ip netip.Addr, table int) *netlink.Route {
	return &netlink.Route{
		LinkIndex: link.Attrs().Index, Table: table, Type: unix.RTN_LOCAL, Scope: netlink.SCOPE_HOST,
		Dst: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(ip.BitLen(), ip.BitLen())},
	}
}

func (m *Manager) forwardWindow() time.Duration {
	if m.ForwardWindow > 0 {
		return m.ForwardWindow
	}
	return DefaultForwardWindow
}
