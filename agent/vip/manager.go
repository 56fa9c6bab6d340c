// Package vip is the node-level effect of failover-IP ownership: it puts a
// failover address on the node's link or takes it off, announces it to the
// neighbours (gratuitous ARP, unsolicited neighbour advertisement), and runs
// the optional takeover/release hook. Whether the node may hold an address is
// decided elsewhere (agent/ownership); this package only carries it out.
//
// Ours and theirs. The agent never changes the node's own addresses or
// routes. It adds failover addresses with a host-length prefix (/32, /128)
// and no prefix route, and remembers them in two ways: a record file listing
// every address it added (DefaultRecordPath, on the host's /run so that it
// lives as long as the addresses do), and, for IPv4, the label "<link>:wf"
// (see `ip -4 addr show label '*:wf'`), which survives the loss of the
// record. Cleanup removes the host-length addresses found by either, and
// nothing else.
package vip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Address is a failover address as the agent wants it on this node.
type Address struct {
	// IP is the failover address.
	IP netip.Addr
	// Interface is the link to put it on; empty means the link that holds
	// Manager.NodeIP.
	Interface string
	// FailoverIP names the FailoverIP object, as namespace/name.
	FailoverIP string
	// Epoch is the ownership epoch under which the node acts.
	Epoch int64
}

// Announcer tells the neighbours on link that ip now lives here.
type Announcer interface {
	Announce(ctx context.Context, link netlink.Link, ip netip.Addr) error
}

// Manager adds, announces and removes failover addresses on one node. Its
// methods are idempotent, so the agent loop may call them on every pass, and
// safe for concurrent use.
type Manager struct {
	// Handle reaches the node's network namespace.
	Handle *netlink.Handle
	// NodeIP is the node's own address; its link receives the failover
	// addresses that name no interface.
	NodeIP netip.Addr
	// Announcer announces added addresses; a PacketAnnouncer with its
	// defaults when nil.
	Announcer Announcer
	// Hook, when set, runs after a takeover and after a release.
	Hook *Hook
	// RecordPath is the file that lists the addresses the agent added
	// (DefaultRecordPath in the agent).
	RecordPath string

	mu sync.Mutex
	// tookOver holds, per address, the epoch whose takeover (announcement
	// and hook) completed in this process, so that repeated Ensure calls do
	// not announce again.
	tookOver map[netip.Addr]int64
}

// Ensure makes the node hold a: it adds the address if missing, then, once
// per epoch or whenever it had to add it, announces it and runs the takeover
// hook. It returns after the last announcement (by default 400ms after the
// first), or when ctx is done.
func (m *Manager) Ensure(ctx context.Context, a Address) error {
	a.IP = a.IP.Unmap()
	if err := checkFailoverIP(a.IP); err != nil {
		return err
	}
	link, err := m.link(a)
	if err != nil {
		return fmt.Errorf("adding %s: %w", a.IP, err)
	}
	added, err := m.add(link, a.IP)
	if err != nil {
		return err
	}
	if !added && m.tookOverIn(a) {
		return nil
	}
	if err := m.announcer().Announce(ctx, link, a.IP); err != nil {
		return err
	}
	if m.Hook != nil {
		if err := m.Hook.Run(ctx, HookTakeover, a, link.Attrs().Name); err != nil {
			return err
		}
	}
	m.setTookOver(a)
	logr.FromContextOrDiscard(ctx).Info("Took over failover address", "address", a.IP, "interface", link.Attrs().Name, "failoverIP", a.FailoverIP, "epoch", a.Epoch)
	return nil
}

// Release makes the node not hold a: it removes the address and, if it was
// here or taken over by this process, runs the release hook. It refuses to
// remove the address when it is on the link with a shorter prefix, that is,
// as one of the node's own addresses.
func (m *Manager) Release(ctx context.Context, a Address) error {
	a.IP = a.IP.Unmap()
	link, err := m.link(a)
	if isLinkNotFound(err) {
		// The address went away with its link; so must its record, or a
		// later Cleanup could remove a copy of it on another link.
		m.forget(a.IP)
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.record().remove(a.IP)
	}
	if err != nil {
		return fmt.Errorf("removing %s: %w", a.IP, err)
	}
	removed, err := m.remove(link, a.IP)
	if err != nil {
		return err
	}
	if !removed && !m.tookOverAny(a.IP) {
		return nil
	}
	if m.Hook != nil {
		if err := m.Hook.Run(ctx, HookRelease, a, link.Attrs().Name); err != nil {
			return err
		}
	}
	m.forget(a.IP)
	logr.FromContextOrDiscard(ctx).Info("Released failover address", "address", a.IP, "interface", link.Attrs().Name, "failoverIP", a.FailoverIP, "epoch", a.Epoch)
	return nil
}

// Held reports whether the address of a is on its link, with any prefix.
func (m *Manager) Held(a Address) (bool, error) {
	a.IP = a.IP.Unmap()
	link, err := m.link(a)
	if isLinkNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking %s: %w", a.IP, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	found, err := findAddr(m.Handle, link, a.IP)
	return len(found) > 0, err
}

// Cleanup removes every failover address the agent added, on any link, and
// nothing else. It runs no hook: it serves `webfarm-agent cleanup`, outside
// any ownership epoch.
func (m *Manager) Cleanup(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	recorded, err := m.record().load()
	if err != nil {
		return err
	}
	addrs, err := m.Handle.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("listing addresses: %w", err)
	}
	var errs []error
	for _, a := range addrs {
		ip := addrOf(a)
		ours := slices.Contains(recorded, ip) || (ip.Is4() && hasOurLabel(a))
		if !ours || !isHostLength(a) {
			continue
		}
		if err := m.Handle.AddrDel(nil, &netlink.Addr{IPNet: a.IPNet, LinkIndex: a.LinkIndex}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("removing %s from link %d: %w", a.IPNet, a.LinkIndex, err))
			continue
		}
		logr.FromContextOrDiscard(ctx).Info("Removed failover address", "address", ip, "linkIndex", a.LinkIndex)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	clear(m.tookOver)
	return m.record().save(nil)
}

// add adds ip to link unless it is there; it reports whether it added it.
func (m *Manager) add(link netlink.Link, ip netip.Addr) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name := link.Attrs().Name
	found, err := findAddr(m.Handle, link, ip)
	if err != nil {
		return false, err
	}
	if len(found) > 0 {
		return false, checkHostLength(found, name)
	}
	// Recorded first: a crash between the two leaves no unknown address.
	if err := m.record().add(ip); err != nil {
		return false, err
	}
	if err := m.Handle.AddrAdd(link, hostAddr(name, ip)); err != nil {
		return false, fmt.Errorf("adding %s to %s: %w", ip, name, err)
	}
	return true, nil
}

// remove removes ip from link if it is there; it reports whether it removed it.
func (m *Manager) remove(link netlink.Link, ip netip.Addr) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name := link.Attrs().Name
	found, err := findAddr(m.Handle, link, ip)
	if err != nil {
		return false, err
	}
	if err := checkHostLength(found, name); err != nil {
		return false, err
	}
	for _, a := range found {
		err := m.Handle.AddrDel(link, &netlink.Addr{IPNet: a.IPNet})
		if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return false, fmt.Errorf("removing %s from %s: %w", a.IPNet, name, err)
		}
	}
	return len(found) > 0, m.record().remove(ip)
}

// checkHostLength refuses an address that is on the link with a shorter
// prefix: it is then one of the node's own addresses, not a failover address.
func checkHostLength(found []netlink.Addr, link string) error {
	for _, a := range found {
		if !isHostLength(a) {
			return fmt.Errorf("%s is on %s as a node address (%s), not as a failover address", a.IP, link, a.IPNet)
		}
	}
	return nil
}

func checkFailoverIP(ip netip.Addr) error {
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsLoopback() || ip.IsMulticast() || ip.IsLinkLocalUnicast() {
		return fmt.Errorf("%q is not a failover address: it must be a unicast address that is not loopback or link-local", ip)
	}
	return nil
}

// SetNodeIP changes the node address whose link receives the failover
// addresses that name no interface: the agent learns it from its FrontNode.
func (m *Manager) SetNodeIP(ip netip.Addr) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.NodeIP = ip
}

func (m *Manager) link(a Address) (netlink.Link, error) {
	if a.Interface != "" {
		return m.Handle.LinkByName(a.Interface)
	}
	m.mu.Lock()
	nodeIP := m.NodeIP
	m.mu.Unlock()
	if !nodeIP.IsValid() {
		return nil, errors.New("no interface given and no node address to find one by")
	}
	return LinkWithAddress(m.Handle, nodeIP)
}

func (m *Manager) announcer() Announcer {
	if m.Announcer == nil {
		return PacketAnnouncer{}
	}
	return m.Announcer
}

func (m *Manager) record() record { return record{path: m.RecordPath} }

func (m *Manager) tookOverIn(a Address) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	epoch, ok := m.tookOver[a.IP]
	return ok && epoch == a.Epoch
}

func (m *Manager) tookOverAny(ip netip.Addr) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.tookOver[ip]
	return ok
}

func (m *Manager) setTookOver(a Address) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tookOver == nil {
		m.tookOver = make(map[netip.Addr]int64)
	}
	m.tookOver[a.IP] = a.Epoch
}

func (m *Manager) forget(ip netip.Addr) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.tookOver, ip)
}
