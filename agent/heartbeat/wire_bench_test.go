package heartbeat

import (
	"crypto/ed25519"
	"fmt"
	"testing"
)

// BenchmarkHeartbeatCodec encodes and decodes a heartbeat of ten claims, what
// a front that is a candidate of ten failover IPs sends every keepalive.
func BenchmarkHeartbeatCodec(b *testing.B) {
	m := &message{Type: msgHeartbeat, Node: "front1", Nonce: testNonce(1), Claims: manyClaims(10)}
	var size int
	for i := 0; b.Loop(); i++ {
		m.Seq = uint64(i + 1)
		buf, err := encode(m, testKey, nodeKey(m.Node))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := decode(buf, testKey); err != nil {
			b.Fatal(err)
		}
		size = len(buf)
	}
	b.ReportMetric(float64(size), "bytes/datagram")
}

// BenchmarkPeerAuthentication times what authenticating one heartbeat
// costs, alone: the shared key's HMAC-SHA256 (either side), and the
// sender's Ed25519 signature and its check by the receiver; for a heartbeat
// of one claim (a farm with one failover IP, the testbed's) and of ten. A
// front signs one heartbeat per peer every keepalive, and checks one from
// each.
func BenchmarkPeerAuthentication(b *testing.B) {
	for _, claims := range []int{1, 10} {
		b.Run(fmt.Sprintf("claims=%d", claims), func(b *testing.B) { benchmarkAuthentication(b, claims) })
	}
}

func benchmarkAuthentication(b *testing.B, claims int) {
	m := &message{Type: msgHeartbeat, Node: "front1", Nonce: testNonce(1), Seq: 1, HasAck: true, Claims: manyClaims(claims)}
	buf, err := encode(m, testKey, nodeKey(m.Node))
	if err != nil {
		b.Fatal(err)
	}
	signed := buf[:len(buf)-trailerSize]
	sig := buf[len(buf)-trailerSize : len(buf)-macSize]
	key, pub := nodeKey(m.Node), publicKey(nodeKey(m.Node))
	b.Run("hmac-sha256", func(b *testing.B) {
		for b.Loop() {
			if !authentic(buf[:len(buf)-macSize], buf[len(buf)-macSize:], [][]byte{testKey}) {
				b.Fatal("MAC refused")
			}
		}
		b.ReportMetric(float64(len(buf)), "bytes/datagram")
	})
	b.Run("ed25519-sign", func(b *testing.B) {
		for b.Loop() {
			ed25519.Sign(key, signed)
		}
		b.ReportMetric(float64(len(buf)), "bytes/datagram")
	})
	b.Run("ed25519-verify", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(pub, signed, sig) {
				b.Fatal("signature refused")
			}
		}
		b.ReportMetric(float64(len(buf)), "bytes/datagram")
	})
}
