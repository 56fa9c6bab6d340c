package heartbeat

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	testKey  = []byte("0123456789abcdef-test-key")
	otherKey = []byte("fedcba9876543210-other-key")
)

// nodeKey is the signing key of node in these tests, the same at every
// call; nodeKey(node, "v2") another one, as after a rotation.
func nodeKey(node string, generation ...string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(strings.Join(append([]string{node}, generation...), "/")))
	return ed25519.NewKeyFromSeed(seed[:])
}

func publicKey(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// seal signs b as front1 and authenticates it with testKey, whatever it
// holds.
func seal(b []byte) []byte {
	b = append(bytes.Clone(b), ed25519.Sign(nodeKey("front1"), b)...)
	return appendMAC(b, testKey)
}

func testNonce(b byte) nonce {
	var n nonce
	for i := range n {
		n[i] = b + byte(i)
	}
	return n
}

func sampleMessages() map[string]*message {
	return map[string]*message{
		"empty heartbeat": {Type: msgHeartbeat, Node: "front1", Nonce: testNonce(1), Seq: 1, Claims: []Claim{}},
		"claims": {Type: msgHeartbeat, Node: "front1.example.com", Nonce: testNonce(2), Seq: 1 << 40, Claims: []Claim{
			{FailoverIP: "shop/www", Holding: true, SeenOwner: "front1.example.com", SeenEpoch: 7},
			{FailoverIP: "shop/api", SeenOwner: "front2", SeenEpoch: 3},
			{FailoverIP: "shop/img", Withdrawn: true, SeenOwner: "front3", SeenEpoch: 4},
			{FailoverIP: "blog/www"},
		}},
		"echo": {Type: msgHeartbeat, Node: "front2", Nonce: testNonce(3), Seq: 9, HasEcho: true, Echo: testNonce(9), Claims: []Claim{}},
		"ack": {Type: msgHeartbeat, Node: "front2", Nonce: testNonce(7), Seq: 10, HasAck: true, AckNonce: testNonce(8), AckSeq: 1 << 33, AckDelay: 1500 * time.Microsecond,
			Claims: []Claim{{FailoverIP: "shop/www", SeenOwner: "front1", SeenEpoch: 7}}},
		"echo and ack": {Type: msgHeartbeat, Node: "front2", Nonce: testNonce(3), Seq: 11, HasEcho: true, Echo: testNonce(9),
			HasAck: true, AckNonce: testNonce(8), AckSeq: 3, Claims: []Claim{}},
		"challenge": {Type: msgChallenge, Node: "front2", Nonce: testNonce(4), Seq: 2, To: "front1", ToNonce: testNonce(5), Challenge: testNonce(6)},
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for name, m := range sampleMessages() {
		t.Run(name, func(t *testing.T) {
			b, err := encode(m, testKey, nodeKey(m.Node))
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			got, err := decode(b, otherKey, testKey)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("decode(encode(m)) = %+v, want %+v", got, m)
			}
			if !signedBy(b, []ed25519.PublicKey{publicKey(nodeKey("other")), publicKey(nodeKey(m.Node))}) {
				t.Errorf("the signature of %s does not verify with its key", m.Node)
			}
			if signedBy(b, []ed25519.PublicKey{publicKey(nodeKey("other")), publicKey(nodeKey(m.Node, "v2"))}) {
				t.Errorf("the signature of %s verifies with other keys", m.Node)
			}
		})
	}
}

func TestDecodeRefusesTampering(t *testing.T) {
	m := sampleMessages()["claims"]
	b, err := encode(m, testKey, nodeKey(m.Node))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decode(b, otherKey); !errors.Is(err, errUnauthenticated) {
		t.Errorf("decode with the wrong key: %v, want %v", err, errUnauthenticated)
	}
	if _, err := decode(b); !errors.Is(err, errUnauthenticated) {
		t.Errorf("decode without a key: %v, want %v", err, errUnauthenticated)
	}
	// Flipping any single bit must make the datagram unusable.
	for i := range b {
		tampered := bytes.Clone(b)
		tampered[i] ^= 0x01
		if _, err := decode(tampered, testKey); err == nil {
			t.Fatalf("decode accepted the datagram with byte %d flipped", i)
		}
	}
	for _, cut := range []int{1, macSize, len(b) - headerMin} {
		if _, err := decode(b[:len(b)-cut], testKey); err == nil {
			t.Errorf("decode accepted the datagram without its last %d bytes", cut)
		}
	}
}

// TestDecodeRefusesAuthenticatedGarbage signs malformed bodies with the right
// key: a holder of the key cannot make the decoder accept them either.
func TestDecodeRefusesAuthenticatedGarbage(t *testing.T) {
	good, err := encode(sampleMessages()["claims"], testKey, nodeKey("front1"))
	if err != nil {
		t.Fatal(err)
	}
	body := good[:len(good)-trailerSize]
	tests := map[string][]byte{
		"trailing byte":    append(bytes.Clone(body), 0),
		"unknown type":     withByte(body, 5, 9),
		"bad node name":    withByte(body, 7, 'F'),
		"claims truncated": body[:len(body)-3],
		"count too large":  withUint16At(body, headerMin+len("front1.example.com")+1, 0xffff),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := decode(seal(b), testKey)
			if !errors.Is(err, errMalformed) {
				t.Errorf("decode: %v, want %v", err, errMalformed)
			}
		})
	}
}

func withByte(b []byte, i int, v byte) []byte {
	c := bytes.Clone(b)
	c[i] = v
	return c
}

func withUint16At(b []byte, i int, v uint16) []byte {
	c := bytes.Clone(b)
	c[i], c[i+1] = byte(v>>8), byte(v)
	return c
}

func TestDecodeRefusesVersionAndSize(t *testing.T) {
	b, err := encode(sampleMessages()["empty heartbeat"], testKey, nodeKey("front1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decode(seal(withByte(b[:len(b)-trailerSize], 4, 1)), testKey); !errors.Is(err, errVersion) {
		t.Errorf("version 1: %v, want %v", err, errVersion)
	}
	// What an agent of the previous release sends: HMAC only, no signature.
	v2 := appendMAC(withByte(b[:len(b)-trailerSize], 4, 2), testKey)
	if _, err := decode(v2, testKey); !errors.Is(err, errVersion) {
		t.Errorf("version 2: %v, want %v", err, errVersion)
	}
	if _, err := decode(make([]byte, MaxDatagramSize+1), testKey); !errors.Is(err, errTooLong) {
		t.Errorf("oversized: %v, want %v", err, errTooLong)
	}
	if _, err := decode([]byte("WFHB"), testKey); !errors.Is(err, errTooShort) {
		t.Errorf("short: %v, want %v", err, errTooShort)
	}
}

func TestEncodeRefusesInvalidContent(t *testing.T) {
	tests := map[string]*message{
		"upper-case node":    {Type: msgHeartbeat, Node: "Front1"},
		"empty node":         {Type: msgHeartbeat},
		"fip without slash":  {Type: msgHeartbeat, Node: "a", Claims: []Claim{{FailoverIP: "www"}}},
		"fip bad namespace":  {Type: msgHeartbeat, Node: "a", Claims: []Claim{{FailoverIP: "a.b/www"}}},
		"negative epoch":     {Type: msgHeartbeat, Node: "a", Claims: []Claim{{FailoverIP: "shop/www", SeenEpoch: -1}}},
		"bad seen owner":     {Type: msgHeartbeat, Node: "a", Claims: []Claim{{FailoverIP: "shop/www", SeenOwner: "no spaces"}}},
		"challenge no there": {Type: msgChallenge, Node: "a"},
		"too many claims":    {Type: msgHeartbeat, Node: "a", Claims: manyClaims(100)},
	}
	for name, m := range tests {
		t.Run(name, func(t *testing.T) {
			if b, err := encode(m, testKey, nodeKey("a")); err == nil {
				t.Errorf("encode = %d bytes, want an error", len(b))
			}
		})
	}
}

func manyClaims(n int) []Claim {
	claims := make([]Claim, n)
	for i := range claims {
		claims[i] = Claim{FailoverIP: fmt.Sprintf("namespace-%03d/failover-ip-%03d", i, i), Holding: i%2 == 0, SeenOwner: "front-node-name", SeenEpoch: int64(i)}
	}
	return claims
}

func TestBatchClaimsFitDatagrams(t *testing.T) {
	longNode := strings.Repeat("n", 63) + "." + strings.Repeat("o", 63) + "." + strings.Repeat("d", 63) + "." + strings.Repeat("e", 61)
	longClaim := Claim{FailoverIP: strings.Repeat("s", 63) + "/" + longNode, SeenOwner: longNode, SeenEpoch: 1}
	for _, tt := range []struct {
		name   string
		node   string
		claims []Claim
		want   int
	}{
		{"none", "front1", nil, 1},
		{"one", "front1", manyClaims(1), 1},
		{"many", "front1", manyClaims(300), 0},
		{"longest names", longNode, []Claim{longClaim, longClaim, longClaim}, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			batches, err := batchClaims(tt.node, tt.claims)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want > 0 && len(batches) != tt.want {
				t.Errorf("%d batches, want %d", len(batches), tt.want)
			}
			var all []Claim
			for _, batch := range batches {
				m := &message{Type: msgHeartbeat, Node: tt.node, Seq: 1, Claims: batch}
				if _, err := encode(m, testKey, nodeKey(tt.node)); err != nil {
					t.Fatalf("batch of %d claims: %v", len(batch), err)
				}
				all = append(all, batch...)
			}
			if len(all) != len(tt.claims) || (len(all) > 0 && !reflect.DeepEqual(all, tt.claims)) {
				t.Errorf("batches carry %d claims, want the %d given in order", len(all), len(tt.claims))
			}
		})
	}
}

// FuzzDecode feeds the decoder garbage twice: as it comes, and signed with
// the key, so that the parser behind the MAC check is fuzzed too. Nothing
// may panic, and whatever decodes must encode back to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages() {
		b, err := encode(m, testKey, nodeKey(m.Node))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)-trailerSize])
	}
	f.Add([]byte("WFHB\x03"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := decode(b, testKey); err == nil {
			checkCanonical(t, b)
		}
		signed := seal(b)
		if _, err := decode(signed, testKey); err == nil {
			checkCanonical(t, signed)
		}
	})
}

// checkCanonical checks that b decodes to a message that encodes to the
// same bytes, up to the signature: b's may be anyone's, or garbage.
func checkCanonical(t *testing.T, b []byte) {
	m, err := decode(b, testKey)
	if err != nil {
		t.Fatal(err)
	}
	again, err := encode(m, testKey, nodeKey(m.Node))
	if err != nil {
		t.Fatalf("decoded message does not encode: %v", err)
	}
	if body, want := again[:len(again)-trailerSize], b[:len(b)-trailerSize]; !bytes.Equal(body, want) {
		t.Fatalf("decoded message encodes to %x, want %x", body, want)
	}
}
