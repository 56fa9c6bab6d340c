package serving

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync/atomic"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ListenFunc opens an ICMP socket, as icmp.ListenPacket does; tests give one
// that opens it inside their namespace.
type ListenFunc func(network, address string) (*icmp.PacketConn, error)

// Pinger sends ICMP echo requests on raw sockets (the agent has NET_RAW), one
// socket per request, and waits for the matching reply.
type Pinger struct {
	listen ListenFunc
	id     int
	seq    atomic.Uint32
}

// NewPinger returns a pinger that opens its sockets with listen (nil:
// icmp.ListenPacket).
func NewPinger(listen ListenFunc) *Pinger {
	if listen == nil {
		listen = icmp.ListenPacket
	}
	// Raw sockets see every echo reply the node receives: a random
	// identifier tells ours from those of other pingers.
	return &Pinger{listen: listen, id: rand.IntN(1 << 16)}
}

// echo is what differs between ICMPv4 and ICMPv6 echoes.
type echo struct {
	network, address string
	protocol         int
	request, reply   icmp.Type
}

var (
	echo4 = echo{"ip4:icmp", "0.0.0.0", 1, ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply}
	echo6 = echo{"ip6:ipv6-icmp", "::", 58, ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply}
)

// Ping returns nil when target answers an echo request before ctx ends.
func (p *Pinger) Ping(ctx context.Context, target netip.Addr) error {
	e := echo4
	if target.Is6() {
		e = echo6
	}
	conn, err := p.listen(e.network, e.address)
	if err != nil {
		return fmt.Errorf("opening an ICMP socket: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	body := &icmp.Echo{ID: p.id, Seq: int(uint16(p.seq.Add(1))), Data: []byte("webfarm serving check")}
	// Marshal leaves the ICMPv6 checksum to the kernel, as raw ICMPv6
	// sockets do.
	out, err := (&icmp.Message{Type: e.request, Body: body}).Marshal(nil)
	if err != nil {
		return err
	}
	if _, err := conn.WriteTo(out, &net.IPAddr{IP: target.AsSlice()}); err != nil {
		return fmt.Errorf("sending an echo request to %s: %w", target, err)
	}
	if err := awaitReply(conn, e, target, body); err != nil {
		// The deadline and the cancellation race: one message for both, so
		// that a status does not change with the winner.
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("no echo reply from %s within the check's timeout", target)
		}
		return err
	}
	return nil
}

// awaitReply reads until the reply to want arrives from target.
func awaitReply(conn *icmp.PacketConn, e echo, target netip.Addr, want *icmp.Echo) error {
	buf := make([]byte, 1500)
	for {
		n, peer, err := conn.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("waiting for an echo reply from %s: %w", target, err)
		}
		if from, ok := peer.(*net.IPAddr); !ok || addrOf(from.IP) != target {
			continue
		}
		msg, err := icmp.ParseMessage(e.protocol, buf[:n])
		if err != nil || msg.Type != e.reply {
			continue
		}
		if got, ok := msg.Body.(*icmp.Echo); ok && got.ID == want.ID && got.Seq == want.Seq {
			return nil
		}
	}
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}
