// Package vip is the node-level effect of failover-IP ownership: it puts a
// failover address on the node's link or takes it off, announces it to the
// neighbours (gratuitous ARP, unsolicited neighbour advertisement), and runs
// the optional takeover/release hook. Whether the node may hold an address is
// decided elsewhere (agent/ownership); this package only carries it out.
//
// Every address it adds has a lifetime: a Gate (agent/deadman) lets the
// kernel answer for it only while the grant given at the last Ensure lasts,
// so an agent that stops calling Ensure — crashed, stalled, paused — falls
// silent on its own. Ensure allows before it adds; Release revokes before
// it removes. Announcements and hooks run beside the caller, one goroutine
// per address and epoch, so that Ensure returns as soon as the address is
// there and allowed, and Release as soon as it is revoked and gone.
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
	"time"

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
	// HandOff says that a Release is a planned hand-off: nobody else may
	// hold the address before this node reports it released, so the
	// address goes at a moment when no connection to it is in flight,
	// waiting at most QuietWait, while Release returns ErrReleasing. Never
	// for a fence, which must be at once.
	HandOff bool
	// Notify names the notify hooks of the FailoverIP; nil: none.
	Notify *Notify
	// PreviousOwner is the owner of the previous epoch, for the hooks.
	PreviousOwner string
	// LastOwner is the owner of the latest earlier epoch that had one, and
	// LastOwnerEpoch that epoch (FailoverIP status.lastOwner), for the
	// hooks.
	LastOwner      string
	LastOwnerEpoch int64
	// Fault says that a Release is a fence: the fault hook runs rather than
	// the backup hook.
	Fault bool
}

// Announcer tells the neighbours on link that ip now lives here.
type Announcer interface {
	Announce(ctx context.Context, link netlink.Link, ip netip.Addr) error
}

// Gate lets the kernel answer for a failover address only while its grant
// lasts (agent/deadman.Gate).
type Gate interface {
	// Allow lets the node answer for ip for grant from now.
	Allow(ip netip.Addr, grant time.Duration) error
	// Revoke makes the node stop answering for ip at once.
	Revoke(ip netip.Addr) error
	// Forget stops gating ip, which is no longer on the node.
	Forget(ip netip.Addr) error
}

// Manager adds, announces and removes failover addresses on one node. Its
// methods are idempotent, so the agent loop may call them on every pass, and
// safe for concurrent use.
type Manager struct {
	// Handle reaches the node's network namespace. A planned hand-off
	// looks for connections in flight through it: that needs the
	// NETLINK_INET_DIAG family (DiagFamilies); without it, it does not wait.
	Handle *netlink.Handle
	// Gate bounds how long the node answers for each address. Nil only for
	// a Manager that adds nothing (Cleanup): an address added without it
	// would have no lifetime.
	Gate Gate
	// NodeIP is the node's own address; its link receives the failover
	// addresses that name no interface.
	NodeIP netip.Addr
	// Announcer announces added addresses; a PacketAnnouncer with its
	// defaults when nil.
	Announcer Announcer
	// Hook, when set, runs after a takeover and after a release.
	Hook *Hook
	// HooksDir holds the notify hooks that Address.Notify names; empty:
	// none runs.
	HooksDir string
	// NodeName is passed to the notify hooks.
	NodeName string
	// Notified, when set, is told when a notify hook starts and ends.
	Notified func(NotifyRun)
	// RecordPath is the file that lists the addresses the agent added
	// (DefaultRecordPath in the agent).
	RecordPath string
	// Forwarder, when set, passes on for ForwardWindow the packets that
	// still reach the node for an address it released, so that a client
	// whose cache still names this node loses nothing while the next
	// holder announces itself.
	Forwarder Forwarder
	// ForwardWindow is how long; DefaultForwardWindow when zero.
	ForwardWindow time.Duration
	// QuietWait bounds the wait of a planned hand-off for no connection
	// in flight; DefaultQuietWait when zero.
	QuietWait time.Duration
	// HandedOff, when set, is called once a planned hand-off has removed
	// an address beside the caller, so that the caller's next Release,
	// which reports it released, comes at once.
	HandedOff func()

	mu sync.Mutex
	// runs holds, per address, the takeover or release this process
	// started last, so that repeated calls do not announce or run a hook
	// again, and Release can stop a takeover.
	runs map[netip.Addr]*run
	// handOffs holds, per address, the planned hand-off waiting for a
	// quiet moment to remove it.
	handOffs map[netip.Addr]*run
	// promotions holds, per address, the master hook that runs before the
	// address is added (Notify.MasterFirst).
	promotions map[netip.Addr]*run
	// grantEnds holds, per address, when the grant given at the last
	// Ensure runs out: a hand-off removes the address before that.
	grantEnds map[netip.Addr]time.Time
	// kept holds, per address handed off, the timer that drops the copy
	// kept for the connections open to it (keepConnections).
	kept map[netip.Addr]*time.Timer

	// promotedMu guards promotedAt, which notify writes from the runs.
	promotedMu sync.Mutex
	// promotedAt holds, per address, the epoch of the last master hook
	// that succeeded in this process (WEBFARM_PROMOTED_EPOCH).
	promotedAt map[netip.Addr]int64
}

// Ensure makes the node hold a for grant from now: it allows the address in
// the gate, adds it if missing and, once per epoch or whenever it had to add
// it, starts announcing it and running the takeover hook. It returns once
// the address is there and allowed; a takeover that failed is reported by
// the next call, which starts it again.
func (m *Manager) Ensure(ctx context.Context, a Address, grant time.Duration) error {
	return m.EnsureUntil(ctx, a, time.Now().Add(grant))
}

// minGrant is the shortest grant a Gate takes (deadman.MinGrant).
const minGrant = time.Millisecond

// ErrProofExpired refuses to hold an address on a proof of liveness that
// ran out before the gate could be opened.
var ErrProofExpired = errors.New("the proof of liveness ran out before the address could be granted")

// EnsureUntil is Ensure with the grant ending at until, a reading of this
// machine's clock: the gate opens for what is left of it when it opens, and
// not at all once it has run out (ErrProofExpired). A grant counted from
// the decision rather than from the gate never outlasts the proof it came
// from however long the agent waited in between: an owner whose save of
// its memory waited 2.3 s on a loaded disk then opened its gate for a full
// proof window, 2 s after its voters had given up on it and another front
// held the address.
func (m *Manager) EnsureUntil(ctx context.Context, a Address, until time.Time) error {
	a.IP = a.IP.Unmap()
	if err := checkFailoverIP(a.IP); err != nil {
		return err
	}
	link, err := m.link(a)
	if err != nil {
		return fmt.Errorf("adding %s: %w", a.IP, err)
	}
	if m.masterFirst(a) {
		if err := m.promoteUnlessHeld(ctx, a, link); err != nil {
			return err
		}
	}
	added, err := m.add(link, a.IP, until)
	if err != nil {
		return err
	}
	return m.takeOver(ctx, a, link, added)
}

// Release makes the node not hold a: it revokes the address in the gate,
// stops its takeover and removes it, at once; for a planned hand-off
// (a.HandOff), beside the caller at a quiet moment, returning ErrReleasing
// until then. If the address was here or
// taken over by this process, it then starts the release hook beside the
// caller and returns ErrReleasing until a later call finds it done. It
// refuses to remove the address when it is on the link with a shorter
// prefix, that is, as one of the node's own addresses.
func (m *Manager) Release(ctx context.Context, a Address) error {
	a.IP = a.IP.Unmap()
	link, err := m.link(a)
	if isLinkNotFound(err) {
		return m.releaseGone(a.IP)
	}
	if err != nil {
		return fmt.Errorf("removing %s: %w", a.IP, err)
	}
	if a.HandOff && !m.handOff(ctx, a, link) {
		return ErrReleasing
	}
	removed, err := m.remove(ctx, link, a.IP)
	if err != nil {
		return err
	}
	return m.release(ctx, a, link, removed)
}

// releaseGone releases an address whose link is gone, and the address with
// it: its takeover, its gate entry and its record must go too, or a later
// Cleanup could remove a copy of it on another link. No hook runs.
func (m *Manager) releaseGone(ip netip.Addr) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopTakeover(ip)
	delete(m.runs, ip)
	if m.Gate != nil {
		if err := m.Gate.Forget(ip); err != nil {
			return err
		}
	}
	return m.record().remove(ip)
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
	return errors.Join(m.RemoveAllBut(ctx, nil), m.removeKeepRules())
}

// RemoveAllBut removes every failover address the agent added, on any link,
// except the addresses in keep, and nothing else; each is revoked in the
// gate first. It runs no hook. A restarted agent calls it before it reports
// anything, with the addresses its memory holds: one its previous process
// left on the link that it does not know of would answer beside the next
// owner while the agent reports it released.
func (m *Manager) RemoveAllBut(ctx context.Context, keep []netip.Addr) error {
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
		if !ours || !isHostLength(a) || slices.Contains(keep, ip) {
			continue
		}
		if err := m.removeFound(a, ip); err != nil {
			errs = append(errs, err)
			continue
		}
		logr.FromContextOrDiscard(ctx).Info("Removed failover address", "address", ip, "linkIndex", a.LinkIndex)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for ip, r := range m.runs {
		if !slices.Contains(keep, ip) {
			r.cancel()
			delete(m.runs, ip)
		}
	}
	return m.record().save(slices.DeleteFunc(recorded, func(ip netip.Addr) bool { return !slices.Contains(keep, ip) }))
}

// removeFound revokes and removes a, an address of ours found on a link.
func (m *Manager) removeFound(a netlink.Addr, ip netip.Addr) error {
	if m.Gate != nil {
		if err := m.Gate.Revoke(ip); err != nil {
			return err
		}
	}
	if err := m.Handle.AddrDel(nil, &netlink.Addr{IPNet: a.IPNet, LinkIndex: a.LinkIndex}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("removing %s from link %d: %w", a.IPNet, a.LinkIndex, err)
	}
	// A copy kept for a hand-off's connections takes its route with it.
	if err := m.dropKept(ip); err != nil {
		return err
	}
	if m.Gate != nil {
		return m.Gate.Forget(ip)
	}
	return nil
}

// add allows ip in the gate until until, then adds it to link unless it is
// there; it reports whether it added it. The node's own addresses are
// refused before the gate hears of them: gated, they would fall silent.
func (m *Manager) add(link netlink.Link, ip netip.Addr, until time.Time) (bool, error) {
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
	if m.Gate == nil {
		return false, fmt.Errorf("adding %s: no gate to bound how long it answers", ip)
	}
	granted := time.Now()
	grant := until.Sub(granted)
	if grant < minGrant {
		return false, fmt.Errorf("adding %s: %w", ip, ErrProofExpired)
	}
	if err := m.Gate.Allow(ip, grant); err != nil {
		return false, err
	}
	if m.grantEnds == nil {
		m.grantEnds = make(map[netip.Addr]time.Time)
	}
	m.grantEnds[ip] = granted.Add(grant)
	// Held again: what reaches the node for ip is its own, and a copy kept
	// for the connections of a hand-off goes.
	if m.stopHandOff(ip) || len(found) == 0 {
		if err := errors.Join(m.stopForwarding(link, ip), m.dropKept(ip)); err != nil {
			return false, err
		}
	}
	if len(found) > 0 {
		return false, nil
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

// remove revokes ip in the gate, stops announcing it, and removes it from
// link if it is there; it reports whether it removed it. Once it is gone,
// the gate forgets it. The node's own addresses are refused before the
// gate hears of them.
//
// With a forwarder, the packets for ip are passed on from before the
// address goes, and the gate revokes it once it is gone: until then the
// copies still reach the node's own stack, then only the next holder, so
// that no packet finds the node with neither. The node answers for the
// address only while it is on the link, and never afterwards.
func (m *Manager) remove(ctx context.Context, link netlink.Link, ip netip.Addr) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.removeLocked(ctx, link, ip)
}

// removeLocked is remove for a caller that holds m.mu.
func (m *Manager) removeLocked(ctx context.Context, link netlink.Link, ip netip.Addr) (bool, error) {
	name := link.Attrs().Name
	found, err := findAddr(m.Handle, link, ip)
	if err != nil {
		return false, err
	}
	if err := checkHostLength(found, name); err != nil {
		return false, err
	}
	forwarding := m.handOffs[ip] != nil && m.handOffs[ip].forwarded
	m.stopHandOff(ip)
	forwarding = len(found) > 0 && (forwarding || m.forwardAway(ctx, link, ip))
	if !forwarding {
		if err := m.revoke(ip); err != nil {
			return false, err
		}
	}
	m.stopTakeover(ip)
	var delErr error
	for _, a := range found {
		err := m.Handle.AddrDel(link, &netlink.Addr{IPNet: a.IPNet})
		if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			delErr = fmt.Errorf("removing %s from %s: %w", a.IPNet, name, err)
			break
		}
	}
	if forwarding {
		// Also when the address could not be removed: it falls silent.
		delErr = errors.Join(delErr, m.revoke(ip))
	}
	if delErr != nil {
		return false, delErr
	}
	// A kept copy stays recorded until it goes (dropKept).
	if m.kept[ip] == nil {
		if err := m.record().remove(ip); err != nil {
			return false, err
		}
	}
	delete(m.grantEnds, ip)
	if m.Gate != nil {
		if err := m.Gate.Forget(ip); err != nil {
			return false, err
		}
	}
	return len(found) > 0, nil
}

func (m *Manager) revoke(ip netip.Addr) error {
	if m.Gate == nil {
		return nil
	}
	return m.Gate.Revoke(ip)
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
