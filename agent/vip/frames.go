package vip

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// Frame layout constants (Ethernet II, RFC 826 ARP, RFC 4861 neighbour
// discovery).
const (
	etherTypeARP  = 0x0806
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd

	ethHeaderLen = 14
	// minFrameLen is the shortest Ethernet frame without its FCS; shorter
	// frames are padded so that strict receivers do not drop them as runts.
	minFrameLen = 60

	arpRequest = 1
	arpReply   = 2

	protoICMPv6              = 58
	icmpv6NeighborAdvert     = 136
	naFlagOverride           = 0x20000000
	ndOptTargetLinkLayerAddr = 2
	// ndHopLimit is mandatory: receivers drop neighbour discovery messages
	// that crossed a router.
	ndHopLimit = 255
)

var (
	broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// allNodesMAC is the Ethernet multicast address of ff02::1.
	allNodesMAC = net.HardwareAddr{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}
	allNodesIP  = netip.MustParseAddr("ff02::1")
)

// garpFrames returns a gratuitous ARP request and reply announcing that ip is
// at mac: sender and target address are both ip, sent to broadcast. Linux
// treats the request as an RFC 5227 announcement; some older stacks only
// honour replies, whose target hardware address must then equal the sender's.
func garpFrames(mac net.HardwareAddr, ip netip.Addr) [][]byte {
	return [][]byte{
		arpFrame(arpRequest, mac, ip, make(net.HardwareAddr, 6)),
		arpFrame(arpReply, mac, ip, mac),
	}
}

func arpFrame(op uint16, mac net.HardwareAddr, ip netip.Addr, targetMAC net.HardwareAddr) []byte {
	b := make([]byte, minFrameLen)
	putEthernet(b, broadcastMAC, mac, etherTypeARP)
	arp := b[ethHeaderLen:]
	binary.BigEndian.PutUint16(arp[0:], 1) // hardware type: Ethernet
	binary.BigEndian.PutUint16(arp[2:], etherTypeIPv4)
	arp[4], arp[5] = 6, 4
	binary.BigEndian.PutUint16(arp[6:], op)
	ip4 := ip.As4()
	copy(arp[8:], mac)
	copy(arp[14:], ip4[:])
	copy(arp[18:], targetMAC)
	copy(arp[24:], ip4[:])
	return b
}

// naFrame returns an unsolicited neighbour advertisement for ip at mac, sent
// from ip to all nodes with the override flag, so that receivers replace the
// link-layer address they cached for ip (RFC 4861 §7.2.6).
func naFrame(mac net.HardwareAddr, ip netip.Addr) []byte {
	const icmpLen = 24 + 8 // header, reserved flags, target; one option
	b := make([]byte, ethHeaderLen+40+icmpLen)
	putEthernet(b, allNodesMAC, mac, etherTypeIPv6)

	ip6 := b[ethHeaderLen:]
	ip6[0] = 6 << 4
	binary.BigEndian.PutUint16(ip6[4:], icmpLen)
	ip6[6] = protoICMPv6
	ip6[7] = ndHopLimit
	src, dst := ip.As16(), allNodesIP.As16()
	copy(ip6[8:], src[:])
	copy(ip6[24:], dst[:])

	icmp := ip6[40:]
	icmp[0] = icmpv6NeighborAdvert
	binary.BigEndian.PutUint32(icmp[4:], naFlagOverride)
	copy(icmp[8:], src[:])
	icmp[24] = ndOptTargetLinkLayerAddr
	icmp[25] = 1 // option length in units of 8 bytes
	copy(icmp[26:], mac)
	binary.BigEndian.PutUint16(icmp[2:], icmpv6Checksum(src, dst, icmp))
	return b
}

func putEthernet(b []byte, dst, src net.HardwareAddr, etherType uint16) {
	copy(b[0:], dst)
	copy(b[6:], src)
	binary.BigEndian.PutUint16(b[12:], etherType)
}

// icmpv6Checksum is the RFC 4443 checksum: the one's complement sum over the
// IPv6 pseudo-header and the message, whose checksum field must be zero.
func icmpv6Checksum(src, dst [16]byte, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	var lenAndProto [8]byte
	binary.BigEndian.PutUint32(lenAndProto[0:], uint32(len(msg)))
	lenAndProto[7] = protoICMPv6
	add(lenAndProto[:])
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
