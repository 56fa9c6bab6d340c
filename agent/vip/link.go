package vip

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// labelSuffix marks the IPv4 addresses the agent adds: their label is
// "<link>:wf", in the style of interface aliases. The kernel keeps the suffix
// when the link is renamed, so it identifies our addresses without the record.
const labelSuffix = ":wf"

// maxLabelLen is IFNAMSIZ minus the terminating NUL.
const maxLabelLen = 15

// LinkWithAddress returns the link that holds ip, such as the node's own
// address: a failover address goes on that link unless told otherwise.
func LinkWithAddress(h *netlink.Handle, ip netip.Addr) (netlink.Link, error) {
	addrs, err := h.AddrList(nil, family(ip))
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	for _, a := range addrs {
		if addrOf(a) == ip {
			link, err := h.LinkByIndex(a.LinkIndex)
			if err != nil {
				return nil, fmt.Errorf("finding link %d that holds %s: %w", a.LinkIndex, ip, err)
			}
			return link, nil
		}
	}
	return nil, fmt.Errorf("no link holds %s", ip)
}

// label returns the label of an IPv4 address we add on link, shortening the
// link name as the kernel does on rename when the whole would not fit.
func label(link string) string {
	if len(link)+len(labelSuffix) > maxLabelLen {
		link = link[:maxLabelLen-len(labelSuffix)]
	}
	return link + labelSuffix
}

func hasOurLabel(a netlink.Addr) bool {
	return strings.HasSuffix(a.Label, labelSuffix)
}

// hostAddr is the netlink form of a failover address on link. It takes no
// route and no prefix: a host-length prefix, and IFA_F_NOPREFIXROUTE so the
// kernel adds no route for it. IPv6 also skips duplicate address detection,
// to be usable at once (the fencing rules already keep it unique), and is
// added deprecated (preferred lifetime 0, valid forever): it still receives
// and answers, but the kernel never picks it as the source of connections
// the node opens, which would break when the address moves away.
func hostAddr(link string, ip netip.Addr) *netlink.Addr {
	a := &netlink.Addr{
		IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(ip.BitLen(), ip.BitLen())},
		Flags: unix.IFA_F_NOPREFIXROUTE,
	}
	if ip.Is4() {
		a.Label = label(link)
		return a
	}
	a.Flags |= unix.IFA_F_NODAD
	a.ValidLft = math.MaxUint32 // forever
	a.PreferedLft = 0
	return a
}

// findAddr returns the addresses of link equal to ip, whatever their prefix.
func findAddr(h *netlink.Handle, link netlink.Link, ip netip.Addr) ([]netlink.Addr, error) {
	addrs, err := h.AddrList(link, family(ip))
	if err != nil {
		return nil, fmt.Errorf("listing addresses of %s: %w", link.Attrs().Name, err)
	}
	var found []netlink.Addr
	for _, a := range addrs {
		if addrOf(a) == ip {
			found = append(found, a)
		}
	}
	return found, nil
}

func isHostLength(a netlink.Addr) bool {
	ones, bits := a.Mask.Size()
	return ones == bits
}

func addrOf(a netlink.Addr) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.IP)
	return ip.Unmap()
}

func family(ip netip.Addr) int {
	if ip.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

func isLinkNotFound(err error) bool {
	var notFound netlink.LinkNotFoundError
	return errors.As(err, &notFound)
}
