package vip

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Announcement defaults: the first round goes out at once, the repeats cover
// a lost frame or a switch port that was still learning.
const (
	DefaultAnnounceCount    = 3
	DefaultAnnounceInterval = 200 * time.Millisecond
)

// PacketAnnouncer announces an address with raw Ethernet frames: gratuitous
// ARP for IPv4, an unsolicited neighbour advertisement for IPv6. It needs
// CAP_NET_RAW.
type PacketAnnouncer struct {
	// Count is how many rounds to send; DefaultAnnounceCount when zero.
	Count int
	// Interval separates the rounds; DefaultAnnounceInterval when zero.
	Interval time.Duration
	// InNamespace runs fn inside the network namespace that holds the link,
	// so that the packet socket is opened there. Nil means the caller's own
	// namespace, which is the agent's case (hostNetwork).
	InNamespace func(fn func() error) error
}

// Announce sends Count rounds of announcements for ip out of link, the first
// at once, and returns when the last is sent or ctx is done. A link without
// an Ethernet address (tun, wireguard) has no neighbours to tell: nothing is
// sent.
func (p PacketAnnouncer) Announce(ctx context.Context, link netlink.Link, ip netip.Addr) error {
	mac := link.Attrs().HardwareAddr
	if len(mac) == 0 {
		return nil
	}
	if len(mac) != 6 {
		return fmt.Errorf("announcing %s on %s: link address %s is not Ethernet", ip, link.Attrs().Name, mac)
	}
	frames, dst, etherType := announcement(mac, ip)
	fd, err := p.openSocket()
	if err != nil {
		return fmt.Errorf("announcing %s on %s: %w", ip, link.Attrs().Name, err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Ifindex: link.Attrs().Index, Protocol: htons(etherType), Halen: 6}
	copy(to.Addr[:], dst)

	count, interval := p.Count, p.Interval
	if count <= 0 {
		count = DefaultAnnounceCount
	}
	if interval <= 0 {
		interval = DefaultAnnounceInterval
	}
	for round := range count {
		if round > 0 {
			if err := sleep(ctx, interval); err != nil {
				return fmt.Errorf("announcing %s on %s: %w", ip, link.Attrs().Name, err)
			}
		}
		// Stopped while this goroutine waited to run after its sleep (a
		// busy node): the address may be gone, and must not be claimed.
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("announcing %s on %s: %w", ip, link.Attrs().Name, err)
		}
		for _, f := range frames {
			if err := unix.Sendto(fd, f, 0, to); err != nil {
				return fmt.Errorf("announcing %s on %s: sending: %w", ip, link.Attrs().Name, err)
			}
		}
	}
	return nil
}

func announcement(mac net.HardwareAddr, ip netip.Addr) (frames [][]byte, dst net.HardwareAddr, etherType uint16) {
	if ip.Is4() {
		return garpFrames(mac, ip), broadcastMAC, etherTypeARP
	}
	return [][]byte{naFrame(mac, ip)}, allNodesMAC, etherTypeIPv6
}

// openSocket opens a send-only packet socket: protocol 0 means the kernel
// queues no received frames on it.
func (p PacketAnnouncer) openSocket() (int, error) {
	fd := -1
	open := func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening packet socket: %w", err)
		}
		return nil
	}
	if p.InNamespace == nil {
		return fd, open()
	}
	return fd, p.InNamespace(open)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// htons converts to network byte order, as sockaddr_ll wants its protocol.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
