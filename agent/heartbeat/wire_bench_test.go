package heartbeat

import "testing"

// BenchmarkHeartbeatCodec encodes and decodes a heartbeat of ten claims, what
// a front that is a candidate of ten failover IPs sends every keepalive.
func BenchmarkHeartbeatCodec(b *testing.B) {
	m := &message{Type: msgHeartbeat, Node: "front1", Nonce: testNonce(1), Claims: manyClaims(10)}
	var size int
	for i := 0; b.Loop(); i++ {
		m.Seq = uint64(i + 1)
		buf, err := encode(m, testKey)
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
