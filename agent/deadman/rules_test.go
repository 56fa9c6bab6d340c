package deadman

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// packet is what the rules see of a packet: its family, its layer-4
// protocol, and its bytes from the network header on.
type packet struct {
	nfproto, l4proto byte
	data             []byte
	// thoff is where the transport header starts in data.
	thoff int
}

var (
	managedIP = map[netip.Addr]bool{
		netip.MustParseAddr("192.0.2.10"): true, netip.MustParseAddr("192.0.2.11"): true,
		netip.MustParseAddr("2001:db8::10"): true, netip.MustParseAddr("2001:db8::11"): true,
	}
	allowedIP = map[netip.Addr]bool{netip.MustParseAddr("192.0.2.11"): true, netip.MustParseAddr("2001:db8::11"): true}
)

// drops runs the rules of chain over p, as the kernel would with these
// set contents, and reports whether one of them drops it.
func drops(t *testing.T, l *layout, chain *nftables.Chain, p packet) bool {
	t.Helper()
	for _, r := range l.rules() {
		if r.Chain == chain && ruleDrops(t, r, p) {
			return true
		}
	}
	return false
}

func ruleDrops(t *testing.T, r *nftables.Rule, p packet) bool {
	t.Helper()
	var reg []byte
	for _, e := range r.Exprs {
		switch e := e.(type) {
		case *expr.Meta:
			reg = []byte{map[expr.MetaKey]byte{expr.MetaKeyNFPROTO: p.nfproto, expr.MetaKeyL4PROTO: p.l4proto}[e.Key]}
		case *expr.Payload:
			start := int(e.Offset)
			if e.Base == expr.PayloadBaseTransportHeader {
				start += p.thoff
			}
			if start+int(e.Len) > len(p.data) {
				return false // the kernel's payload expression breaks the rule
			}
			reg = p.data[start : start+int(e.Len)]
		case *expr.Cmp:
			if e.Op != expr.CmpOpEq || e.Register != 1 {
				t.Fatalf("unexpected comparison %+v", e)
			}
			if !bytes.Equal(reg, e.Data) {
				return false
			}
		case *expr.Lookup:
			ip, ok := netip.AddrFromSlice(reg)
			in := map[string]map[netip.Addr]bool{managed4: managedIP, managed6: managedIP, allowed4: allowedIP, allowed6: allowedIP}[e.SetName][ip]
			if !ok || in == e.Invert {
				return false
			}
		case *expr.Verdict:
			return e.Kind == expr.VerdictDrop
		default:
			t.Fatalf("expression %T not modelled", e)
		}
	}
	return false
}

func arpPacket(op uint16, sender, target string) packet {
	b := make([]byte, 28)
	binary.BigEndian.PutUint16(b[0:], 1)
	binary.BigEndian.PutUint32(b[2:], arpIPv4OverEthernet)
	binary.BigEndian.PutUint16(b[6:], op)
	s, tg := netip.MustParseAddr(sender).As4(), netip.MustParseAddr(target).As4()
	copy(b[14:], s[:])
	copy(b[24:], tg[:])
	return packet{data: b}
}

func ipv4Packet(dst string) packet {
	b := make([]byte, 20+8)
	b[0], b[9] = 0x45, unix.IPPROTO_UDP
	d := netip.MustParseAddr(dst).As4()
	copy(b[16:], d[:])
	return packet{nfproto: unix.NFPROTO_IPV4, l4proto: unix.IPPROTO_UDP, data: b, thoff: 20}
}

// ipv6Packet is an IPv6 packet to dst carrying an ICMPv6 message of type
// icmpType about target (neighbour discovery), or UDP when icmpType is 0.
func ipv6Packet(dst string, icmpType byte, target string) packet {
	b := make([]byte, 40+24)
	b[0] = 6 << 4
	d := netip.MustParseAddr(dst).As16()
	copy(b[24:], d[:])
	if icmpType == 0 {
		return packet{nfproto: unix.NFPROTO_IPV6, l4proto: unix.IPPROTO_UDP, data: b, thoff: 40}
	}
	b[40] = icmpType
	tg := netip.MustParseAddr(target).As16()
	copy(b[40+8:], tg[:])
	return packet{nfproto: unix.NFPROTO_IPV6, l4proto: unix.IPPROTO_ICMPV6, data: b, thoff: 40}
}

func TestRules(t *testing.T) {
	l := newLayout()
	// 192.0.2.10 and 2001:db8::10 are managed without a grant, .11 and
	// ::11 are managed and allowed, .1 and ::1 are the node's own.
	tests := []struct {
		name  string
		chain *nftables.Chain
		p     packet
		want  bool
	}{
		{"ARP request for an ungranted address", l.arpInput, arpPacket(1, "192.0.2.99", "192.0.2.10"), true},
		{"ARP request for a granted address", l.arpInput, arpPacket(1, "192.0.2.99", "192.0.2.11"), false},
		{"ARP request for the node's address", l.arpInput, arpPacket(1, "192.0.2.99", "192.0.2.1"), false},
		{"ARP reply to an ungranted address", l.arpInput, arpPacket(2, "192.0.2.99", "192.0.2.10"), false},
		{"ARP not for IPv4 over Ethernet", l.arpInput, packet{data: append([]byte{0, 1, 0x86, 0xdd}, make([]byte, 24)...)}, false},
		{"ARP sent as an ungranted address", l.arpOutput, arpPacket(2, "192.0.2.10", "192.0.2.99"), true},
		{"ARP request sent as an ungranted address", l.arpOutput, arpPacket(1, "192.0.2.10", "192.0.2.99"), true},
		{"ARP sent as a granted address", l.arpOutput, arpPacket(2, "192.0.2.11", "192.0.2.99"), false},
		{"ARP sent as the node", l.arpOutput, arpPacket(1, "192.0.2.1", "192.0.2.10"), false},
		{"IPv4 to an ungranted address", l.inetInput, ipv4Packet("192.0.2.10"), true},
		{"IPv4 to a granted address", l.inetInput, ipv4Packet("192.0.2.11"), false},
		{"IPv4 to the node", l.inetInput, ipv4Packet("192.0.2.1"), false},
		{"IPv6 to an ungranted address", l.inetInput, ipv6Packet("2001:db8::10", 0, ""), true},
		{"IPv6 to a granted address", l.inetInput, ipv6Packet("2001:db8::11", 0, ""), false},
		{"solicitation for an ungranted address", l.inetInput, ipv6Packet("ff02::1:ff00:10", icmpv6NeighSolicit, "2001:db8::10"), true},
		{"solicitation for a granted address", l.inetInput, ipv6Packet("ff02::1:ff00:11", icmpv6NeighSolicit, "2001:db8::11"), false},
		{"solicitation for the node", l.inetInput, ipv6Packet("ff02::1:ff00:1", icmpv6NeighSolicit, "2001:db8::1"), false},
		{"advertisement received for an ungranted address", l.inetInput, ipv6Packet("ff02::1", icmpv6NeighAdvert, "2001:db8::10"), false},
		{"advertisement sent for an ungranted address", l.inetOutput, ipv6Packet("ff02::1", icmpv6NeighAdvert, "2001:db8::10"), true},
		{"advertisement sent for a granted address", l.inetOutput, ipv6Packet("ff02::1", icmpv6NeighAdvert, "2001:db8::11"), false},
		{"solicitation sent for an ungranted address", l.inetOutput, ipv6Packet("ff02::1:ff00:10", icmpv6NeighSolicit, "2001:db8::10"), false},
		{"IPv4 sent to an ungranted address", l.inetOutput, ipv4Packet("192.0.2.10"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := drops(t, l, tt.chain, tt.p); got != tt.want {
				t.Errorf("dropped = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRulesLookUpTheirOwnTable: a rule may only name sets of its own table.
func TestRulesLookUpTheirOwnTable(t *testing.T) {
	l := newLayout()
	own := map[*nftables.Table][]string{}
	for _, s := range l.sets() {
		own[s.Table] = append(own[s.Table], s.Name)
	}
	for _, r := range l.rules() {
		if r.Table != r.Chain.Table {
			t.Errorf("rule of chain %s/%s in table family %d", r.Chain.Table.Name, r.Chain.Name, r.Table.Family)
		}
		for _, e := range r.Exprs {
			if lk, ok := e.(*expr.Lookup); ok && !slices.Contains(own[r.Table], lk.SetName) {
				t.Errorf("rule in the family %d table looks up %s, which it does not have", r.Table.Family, lk.SetName)
			}
		}
	}
}
