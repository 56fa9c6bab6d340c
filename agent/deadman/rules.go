package deadman

import (
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TableName names the gate's tables, one in the arp family (the only one
// that sees ARP) and one in the inet family. The gate touches nothing else.
const TableName = "webfarm-deadman"

// Set names. An address is managed while the node may hold it at all; it
// is allowed while its grant lasts. The arp table has its own IPv4 sets,
// since a rule can only look up sets of its own table.
const (
	managed4 = "managed4"
	allowed4 = "allowed4"
	managed6 = "managed6"
	allowed6 = "allowed6"
)

// Wire constants the rules match on (RFC 826, RFC 4861).
const (
	arpRequest         = 1
	icmpv6NeighSolicit = 135
	icmpv6NeighAdvert  = 136
	// arpIPv4OverEthernet is the ARP header's protocol type, hardware and
	// protocol address lengths for IPv4 over Ethernet: it fixes the offsets
	// of the addresses behind it.
	arpIPv4OverEthernet = 0x08000604
)

// Offsets in the ARP header (IPv4 over Ethernet), the IPv4 and IPv6
// headers, and the neighbour discovery messages.
const (
	arpOffProtoType = 2
	arpOffOp        = 6
	arpOffSenderIP  = 14
	arpOffTargetIP  = 24
	ipv4OffDst      = 16
	ipv6OffDst      = 24
	ndOffTarget     = 8
)

// layout is the gate as nftables objects: two tables, their sets and
// chains, and the rules that drop what concerns a managed address without
// a grant.
type layout struct {
	arp, inet *nftables.Table

	// arpManaged and arpAllowed are the IPv4 sets of the arp table.
	arpManaged, arpAllowed                     *nftables.Set
	managed4, allowed4, managed6, allowed6     *nftables.Set
	arpInput, arpOutput, inetInput, inetOutput *nftables.Chain
}

func newLayout() *layout {
	l := &layout{
		arp:  &nftables.Table{Name: TableName, Family: nftables.TableFamilyARP},
		inet: &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet},
	}
	l.arpManaged = addrSet(l.arp, managed4, nftables.TypeIPAddr, false)
	l.arpAllowed = addrSet(l.arp, allowed4, nftables.TypeIPAddr, true)
	l.managed4 = addrSet(l.inet, managed4, nftables.TypeIPAddr, false)
	l.allowed4 = addrSet(l.inet, allowed4, nftables.TypeIPAddr, true)
	l.managed6 = addrSet(l.inet, managed6, nftables.TypeIP6Addr, false)
	l.allowed6 = addrSet(l.inet, allowed6, nftables.TypeIP6Addr, true)
	// NF_ARP_IN and NF_ARP_OUT are the arp family's own hook numbers.
	l.arpInput = baseChain(l.arp, "input", nftables.ChainHookRef(0))
	l.arpOutput = baseChain(l.arp, "output", nftables.ChainHookRef(1))
	l.inetInput = baseChain(l.inet, "input", nftables.ChainHookInput)
	l.inetOutput = baseChain(l.inet, "output", nftables.ChainHookOutput)
	return l
}

func addrSet(t *nftables.Table, name string, key nftables.SetDatatype, timeout bool) *nftables.Set {
	return &nftables.Set{Table: t, Name: name, KeyType: key, HasTimeout: timeout}
}

func baseChain(t *nftables.Table, name string, hook *nftables.ChainHook) *nftables.Chain {
	return &nftables.Chain{
		Table: t, Name: name, Hooknum: hook,
		Priority: nftables.ChainPriorityFilter, Type: nftables.ChainTypeFilter,
	}
}

func (l *layout) sets() []*nftables.Set {
	return []*nftables.Set{l.arpManaged, l.arpAllowed, l.managed4, l.allowed4, l.managed6, l.allowed6}
}

func (l *layout) chains() []*nftables.Chain {
	return []*nftables.Chain{l.arpInput, l.arpOutput, l.inetInput, l.inetOutput}
}

// setsOf returns the sets that hold ip: the managed sets and the allowed
// sets, pairwise (an IPv4 address lives in both tables).
func (l *layout) setsOf(ip netip.Addr) (managed, allowed []*nftables.Set) {
	if ip.Is4() {
		return []*nftables.Set{l.arpManaged, l.managed4}, []*nftables.Set{l.arpAllowed, l.allowed4}
	}
	return []*nftables.Set{l.managed6}, []*nftables.Set{l.allowed6}
}

// rules returns, per chain, the rules that make a managed address without
// a grant fall silent:
//   - arp input: requests for it (no ARP reply);
//   - arp output: anything it sends as the sender (no reply, no probe);
//   - inet input: IPv4 and IPv6 packets to it, and neighbour solicitations
//     for it (no neighbour advertisement);
//   - inet output: neighbour advertisements for it (the kernel's own
//     unsolicited ones).
func (l *layout) rules() []*nftables.Rule {
	rule := func(c *nftables.Chain, e ...expr.Any) *nftables.Rule {
		return &nftables.Rule{Table: c.Table, Chain: c, Exprs: e}
	}
	return []*nftables.Rule{
		rule(l.arpInput, concat(arpIPv4(), arpOp(arpRequest), dropUnallowed(network(arpOffTargetIP, 4), l.arpManaged, l.arpAllowed))...),
		rule(l.arpOutput, concat(arpIPv4(), dropUnallowed(network(arpOffSenderIP, 4), l.arpManaged, l.arpAllowed))...),
		rule(l.inetInput, concat(nfproto(unix.NFPROTO_IPV4), dropUnallowed(network(ipv4OffDst, 4), l.managed4, l.allowed4))...),
		rule(l.inetInput, concat(nfproto(unix.NFPROTO_IPV6), dropUnallowed(network(ipv6OffDst, 16), l.managed6, l.allowed6))...),
		rule(l.inetInput, concat(icmpv6(icmpv6NeighSolicit), dropUnallowed(transport(ndOffTarget, 16), l.managed6, l.allowed6))...),
		rule(l.inetOutput, concat(icmpv6(icmpv6NeighAdvert), dropUnallowed(transport(ndOffTarget, 16), l.managed6, l.allowed6))...),
	}
}

// dropUnallowed loads an address with load and drops the packet when the
// address is managed and not allowed.
func dropUnallowed(load expr.Any, managed, allowed *nftables.Set) []expr.Any {
	return []expr.Any{
		load,
		&expr.Lookup{SourceRegister: 1, SetName: managed.Name, SetID: managed.ID},
		&expr.Lookup{SourceRegister: 1, SetName: allowed.Name, SetID: allowed.ID, Invert: true},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// arpIPv4 matches ARP for IPv4 over Ethernet, whose addresses lie at the
// offsets above.
func arpIPv4() []expr.Any {
	return []expr.Any{
		network(arpOffProtoType, 4),
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be32(arpIPv4OverEthernet)},
	}
}

func arpOp(op uint16) []expr.Any {
	return []expr.Any{
		network(arpOffOp, 2),
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(op >> 8), byte(op)}},
	}
}

func nfproto(proto byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
}

// icmpv6 matches ICMPv6 messages of type typ, behind any extension headers.
func icmpv6(typ byte) []expr.Any {
	return concat(nfproto(unix.NFPROTO_IPV6), []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
		transport(0, 1),
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{typ}},
	})
}

func network(offset, length uint32) expr.Any {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: length}
}

func transport(offset, length uint32) expr.Any {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: offset, Len: length}
}

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
