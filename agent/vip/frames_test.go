package vip

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

var testMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x20, 0x30}

func TestGARPFrames(t *testing.T) {
	ip := netip.MustParseAddr("10.77.0.100")
	frames := garpFrames(testMAC, ip)
	if len(frames) != 2 {
		t.Fatalf("got %d frames, want a request and a reply", len(frames))
	}
	tests := []struct {
		name      string
		frame     []byte
		op        uint16
		targetMAC net.HardwareAddr
	}{
		{"request", frames[0], arpRequest, net.HardwareAddr{0, 0, 0, 0, 0, 0}},
		{"reply", frames[1], arpReply, testMAC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.frame
			if len(f) != minFrameLen {
				t.Errorf("length %d, want %d", len(f), minFrameLen)
			}
			checkEthernet(t, f, broadcastMAC, etherTypeARP)
			arp := f[ethHeaderLen:]
			want := []struct {
				field     string
				got, want []byte
			}{
				{"hardware type", arp[0:2], []byte{0, 1}},
				{"protocol type", arp[2:4], []byte{0x08, 0x00}},
				{"lengths", arp[4:6], []byte{6, 4}},
				{"operation", arp[6:8], binary.BigEndian.AppendUint16(nil, tt.op)},
				{"sender MAC", arp[8:14], testMAC},
				{"sender IP", arp[14:18], []byte{10, 77, 0, 100}},
				{"target MAC", arp[18:24], tt.targetMAC},
				{"target IP", arp[24:28], []byte{10, 77, 0, 100}},
				{"padding", arp[28:], make([]byte, minFrameLen-ethHeaderLen-28)},
			}
			for _, w := range want {
				if !bytes.Equal(w.got, w.want) {
					t.Errorf("%s = % x, want % x", w.field, w.got, w.want)
				}
			}
		})
	}
}

func TestNAFrame(t *testing.T) {
	ip := netip.MustParseAddr("fd00:77::100")
	f := naFrame(testMAC, ip)
	checkEthernet(t, f, allNodesMAC, etherTypeIPv6)
	ip6 := f[ethHeaderLen:]
	icmp := ip6[40:]
	src, dst := ip.As16(), allNodesIP.As16()
	want := []struct {
		field     string
		got, want []byte
	}{
		{"version", []byte{ip6[0] >> 4}, []byte{6}},
		{"payload length", ip6[4:6], []byte{0, 32}},
		{"next header", ip6[6:7], []byte{58}},
		{"hop limit", ip6[7:8], []byte{255}},
		{"source", ip6[8:24], src[:]},
		{"destination", ip6[24:40], dst[:]},
		{"type, code", icmp[0:2], []byte{136, 0}},
		{"flags: override only", icmp[4:8], []byte{0x20, 0, 0, 0}},
		{"target", icmp[8:24], src[:]},
		{"option: target link-layer address", icmp[24:26], []byte{2, 1}},
		{"option MAC", icmp[26:32], testMAC},
	}
	for _, w := range want {
		if !bytes.Equal(w.got, w.want) {
			t.Errorf("%s = % x, want % x", w.field, w.got, w.want)
		}
	}
	if len(icmp) != 32 {
		t.Errorf("ICMPv6 length %d, want 32", len(icmp))
	}
	// A correct checksum makes the sum over pseudo-header and message,
	// checksum included, all ones.
	if got := icmpv6Checksum(src, dst, icmp); got != 0 {
		t.Errorf("checksum does not verify: residue %#04x", got)
	}
}

func TestICMPv6ChecksumKnownValue(t *testing.T) {
	// Echo request ::1 -> ::1, id 0, seq 0, no data; checksum computed by
	// independently of this code from RFC 4443: 0x7fbb.
	src := netip.IPv6Loopback().As16()
	msg := []byte{128, 0, 0, 0, 0, 0, 0, 0}
	if got := icmpv6Checksum(src, src, msg); got != 0x7fbb {
		t.Errorf("checksum = %#04x, want 0x7fbb", got)
	}
}

func checkEthernet(t *testing.T, f []byte, dst net.HardwareAddr, etherType uint16) {
	t.Helper()
	if !bytes.Equal(f[0:6], dst) {
		t.Errorf("destination %s, want %s", net.HardwareAddr(f[0:6]), dst)
	}
	if !bytes.Equal(f[6:12], testMAC) {
		t.Errorf("source %s, want %s", net.HardwareAddr(f[6:12]), testMAC)
	}
	if got := binary.BigEndian.Uint16(f[12:14]); got != etherType {
		t.Errorf("ethertype %#04x, want %#04x", got, etherType)
	}
}
