package handoff

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TableName names the forwarder's tables, one in the ip family and one in
// the ip6 family: the dup statement exists only there, not in inet. The
// forwarder touches nothing else.
const TableName = "webfarm-handoff"

// Set names: the addresses forwarded, keyed by the link they were on and
// the address, each element with the timeout that bounds its forwarding.
const (
	set4 = "forward4"
	set6 = "forward6"
)

// Offsets of the fields the rules read.
const (
	ipv4OffTTL      = 8
	ipv4OffDst      = 16
	ipv6OffHopLimit = 7
	ipv6OffDst      = 24
)

// Registers. A concatenated key lies in consecutive 32-bit registers, from
// NFT_REG32_00: the input link, then the address. NFT_REG32_00 shares its
// bytes with NFT_REG_1, the scratch register of the checks before them.
const (
	regScratch = unix.NFT_REG_1
	regLink    = unix.NFT_REG32_00
	regAddr    = unix.NFT_REG32_01
)

// KeepMark is the packet mark the forwarder puts on the packets, for an
// address it forwards, of a TCP connection the node still has to that
// address (an established socket bound to it), instead of passing them on:
// the node routes the marked packets to a copy of the address it keeps
// for them (see agent/vip), so that a connection that was open when the
// address moved ends normally rather than being reset by the next holder.
// One bit, far from the bits kube-proxy (0x4000, 0x8000) and the common
// CNIs use.
const KeepMark uint32 = 0x00200000

// layout is the forwarder as nftables objects.
type layout struct {
	ip, ip6        *nftables.Table
	fwd4, fwd6     *nftables.Set
	chain4, chain6 *nftables.Chain
}

func newLayout() *layout {
	l := &layout{
		ip:  &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4},
		ip6: &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv6},
	}
	l.fwd4 = forwardSet(l.ip, set4, nftables.TypeIPAddr)
	l.fwd6 = forwardSet(l.ip6, set6, nftables.TypeIP6Addr)
	l.chain4 = prerouting(l.ip)
	l.chain6 = prerouting(l.ip6)
	return l
}

func forwardSet(t *nftables.Table, name string, addr nftables.SetDatatype) *nftables.Set {
	return &nftables.Set{
		Table: t, Name: name, HasTimeout: true, Concatenation: true,
		KeyType: nftables.MustConcatSetType(nftables.TypeIFIndex, addr),
	}
}

// prerouting is a chain at the raw priority: it sees a packet before
// conntrack, routing and the input or forward hooks, so the packets it
// takes leave no conntrack entry and never reach the node's own stack.
func prerouting(t *nftables.Table) *nftables.Chain {
	return &nftables.Chain{
		Table: t, Name: "prerouting", Hooknum: nftables.ChainHookPrerouting,
		Priority: nftables.ChainPriorityRaw, Type: nftables.ChainTypeFilter,
	}
}

func (l *layout) tables() []*nftables.Table { return []*nftables.Table{l.ip, l.ip6} }
func (l *layout) sets() []*nftables.Set     { return []*nftables.Set{l.fwd4, l.fwd6} }
func (l *layout) chains() []*nftables.Chain { return []*nftables.Chain{l.chain4, l.chain6} }

func (l *layout) setOf(ip netip.Addr) *nftables.Set {
	if ip.Is4() {
		return l.fwd4
	}
	return l.fwd6
}

// rules returns one rule per family: a unicast packet for this node whose
// input link and destination are in the set, and that may take one more
// hop, is sent on as a copy to its destination, out of the link it came
// in by, and the original is dropped. The copy (nf_dup) is routed as a
// packet of the node's own, untracked, so it resolves its destination by
// ARP or neighbour discovery on that link and waits in the neighbour queue
// while nobody answers; it is never delivered locally, since the address
// is no longer the node's own, and it is never IP-forwarded, so no
// forwarding sysctl, reverse-path filter or ICMP redirect is involved.
//
// Before it, the packets of connections the node still has are marked
// with KeepMark and let through (keepRule).
func (l *layout) rules() []*nftables.Rule {
	return []*nftables.Rule{
		keepRule(l.chain4, l.fwd4, ipv4OffDst, 4),
		forwardRule(l.chain4, l.fwd4, ipv4OffTTL, ipv4OffDst, 4),
		keepRule(l.chain6, l.fwd6, ipv6OffDst, 16),
		forwardRule(l.chain6, l.fwd6, ipv6OffHopLimit, ipv6OffDst, 16),
	}
}

// keepRule marks with KeepMark, and lets through, a packet for an address
// in the set that belongs to an established socket of the node bound to
// that address ("socket wildcard 0": a full socket with a local address;
// a listener on the wildcard address, a handshake in progress or a
// TIME_WAIT does not match). New connections are passed on as before.
func keepRule(c *nftables.Chain, s *nftables.Set, dstOffset, addrLen uint32) *nftables.Rule {
	mark := make([]byte, 4)
	binary.NativeEndian.PutUint32(mark, KeepMark)
	return &nftables.Rule{Table: c.Table, Chain: c, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyPKTTYPE, Register: regScratch},
		&expr.Cmp{Op: expr.CmpOpEq, Register: regScratch, Data: []byte{unix.PACKET_HOST}},
		&expr.Meta{Key: expr.MetaKeyIIF, Register: regLink},
		network(regAddr, dstOffset, addrLen),
		&expr.Lookup{SourceRegister: regLink, SetName: s.Name, SetID: s.ID},
		&expr.Socket{Key: expr.SocketKeyWildcard, Register: regScratch},
		&expr.Cmp{Op: expr.CmpOpEq, Register: regScratch, Data: []byte{0}},
		&expr.Immediate{Register: regScratch, Data: mark},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: regScratch},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}}
}

func forwardRule(c *nftables.Chain, s *nftables.Set, hopOffset, dstOffset, addrLen uint32) *nftables.Rule {
	return &nftables.Rule{Table: c.Table, Chain: c, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyPKTTYPE, Register: regScratch},
		&expr.Cmp{Op: expr.CmpOpEq, Register: regScratch, Data: []byte{unix.PACKET_HOST}},
		// A copy that came back (a loop through stale neighbour entries)
		// dies out instead of circling.
		network(regScratch, hopOffset, 1),
		&expr.Cmp{Op: expr.CmpOpGt, Register: regScratch, Data: []byte{1}},
		&expr.Meta{Key: expr.MetaKeyIIF, Register: regLink},
		network(regAddr, dstOffset, addrLen),
		&expr.Lookup{SourceRegister: regLink, SetName: s.Name, SetID: s.ID},
		&expr.Dup{RegAddr: regAddr, RegDev: regLink, IsRegDevSet: true},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}}
}

func network(reg, offset, length uint32) expr.Any {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: length}
}

// key is the set key of ip on the link with index link: the link index in
// host order, as meta iif loads it, then the address.
func key(link int, ip netip.Addr) []byte {
	k := make([]byte, 4, 4+ip.BitLen()/8)
	binary.NativeEndian.PutUint32(k, uint32(link))
	return append(k, ip.AsSlice()...)
}
