package heartbeat

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Wire format, version 3. All integers are big-endian; a string is a length
// (one byte, or two for a failover IP name) followed by that many bytes.
//
//	magic "WFHB" | version 3 | type | sender node | sender nonce [16] | seq uint64
//	heartbeat: flags (bit 0: echo follows, bit 1: ack follows) | [echo [16]]
//	           | [ack nonce [16] | ack seq uint64 | ack delay uint32 µs] | count uint16 | count × claim
//	           claim: failover IP (2-byte length) | flags (bit 0: holding, bit 1: withdrawn) | seen owner | seen epoch int64
//	challenge: target node | target nonce [16] | challenge [16]
//	Ed25519 signature [64], by the sender node's own key, over every byte before it
//	HMAC-SHA256 [32], under the shared key, over every byte before it
const (
	// Version is the wire format version this package speaks. Version 2
	// added the ack, without which no peer proof is possible; version 3
	// the sender's signature and the ack's delay. A datagram of another
	// version is refused whole (errVersion), before anything of it is read.
	Version = 3
	// MaxDatagramSize bounds every datagram, sent or accepted: small enough
	// never to be fragmented on an Ethernet path (the size QUIC relies on).
	MaxDatagramSize = 1200
	// NonceSize is the size of a boot nonce and of a challenge.
	NonceSize = 16

	macSize = sha256.Size
	sigSize = ed25519.SignatureSize
	// trailerSize is the signature and the MAC that end every datagram.
	trailerSize = sigSize + macSize
	headerMin   = 4 + 1 + 1 + 1 + NonceSize + 8
	// ackSize is an ack's nonce, sequence number and delay.
	ackSize = NonceSize + 8 + 4
	// maxNodeName is the longest Node name Kubernetes accepts.
	maxNodeName = validation.DNS1123SubdomainMaxLength
	// maxFailoverIPName is "namespace/name" at the longest.
	maxFailoverIPName = validation.DNS1123LabelMaxLength + 1 + validation.DNS1123SubdomainMaxLength
)

var magic = [4]byte{'W', 'F', 'H', 'B'}

// msgType tells a heartbeat from a challenge; the HMAC covers it, so one can
// never be taken for the other.
type msgType uint8

const (
	msgHeartbeat msgType = 1
	msgChallenge msgType = 2
)

const (
	flagEcho    = 1 << 0
	flagAck     = 1 << 1
	flagHolding = 1 << 0
	// flagWithdrawn is new in this version 2 format; an older agent
	// refuses the datagram, so hears no confirmation from it: what the
	// flag says anyway.
	flagWithdrawn = 1 << 1
)

// Decoding errors. errUnauthenticated is the only one a datagram without the
// shared key can cause once it has the right size, magic and version.
var (
	errTooShort        = errors.New("datagram too short")
	errTooLong         = errors.New("datagram too long")
	errMagic           = errors.New("not a webfarm heartbeat")
	errVersion         = errors.New("unsupported wire version")
	errUnauthenticated = errors.New("authentication failed")
	errMalformed       = errors.New("malformed message")
)

type nonce [NonceSize]byte

// message is one datagram, decoded.
type message struct {
	Type  msgType
	Node  string
	Nonce nonce
	Seq   uint64

	// Heartbeat. Echo answers a challenge. Ack names the latest heartbeat
	// the sender accepted from the receiver: the receiver's boot nonce and
	// sequence number, so that the receiver knows when it sent it, and
	// AckDelay, how long the sender kept it before this heartbeat, so that
	// the receiver can tell the round trip (to the microsecond, at most
	// about 71 minutes).
	HasEcho  bool
	Echo     nonce
	HasAck   bool
	AckNonce nonce
	AckSeq   uint64
	AckDelay time.Duration
	Claims   []Claim

	// Challenge: Node challenges To, whose current boot nonce is ToNonce.
	To        string
	ToNonce   nonce
	Challenge nonce
}

// encode returns the datagram for m, signed by signer (the sender node's
// own key) and authenticated with the shared key, or an error naming what
// cannot be sent.
func encode(m *message, key []byte, signer ed25519.PrivateKey) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 256)
	b = append(b, magic[:]...)
	b = append(b, Version, byte(m.Type))
	b = appendString8(b, m.Node)
	b = append(b, m.Nonce[:]...)
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	switch m.Type {
	case msgHeartbeat:
		b = appendHeartbeat(b, m)
	case msgChallenge:
		b = appendString8(b, m.To)
		b = append(b, m.ToNonce[:]...)
		b = append(b, m.Challenge[:]...)
	}
	b = append(b, ed25519.Sign(signer, b)...)
	b = appendMAC(b, key)
	if len(b) > MaxDatagramSize {
		return nil, fmt.Errorf("message of %d bytes exceeds %d", len(b), MaxDatagramSize)
	}
	return b, nil
}

func appendHeartbeat(b []byte, m *message) []byte {
	var flags byte
	if m.HasEcho {
		flags |= flagEcho
	}
	if m.HasAck {
		flags |= flagAck
	}
	b = append(b, flags)
	if m.HasEcho {
		b = append(b, m.Echo[:]...)
	}
	if m.HasAck {
		b = append(b, m.AckNonce[:]...)
		b = binary.BigEndian.AppendUint64(b, m.AckSeq)
		b = binary.BigEndian.AppendUint32(b, delayMicros(m.AckDelay))
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Claims)))
	for _, c := range m.Claims {
		b = appendClaim(b, c)
	}
	return b
}

func appendClaim(b []byte, c Claim) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.FailoverIP)))
	b = append(b, c.FailoverIP...)
	var flags byte
	if c.Holding {
		flags |= flagHolding
	}
	if c.Withdrawn {
		flags |= flagWithdrawn
	}
	b = append(b, flags)
	b = appendString8(b, c.SeenOwner)
	return binary.BigEndian.AppendUint64(b, uint64(c.SeenEpoch))
}

// delayMicros is d in whole microseconds, clamped to what the wire holds; a
// negative delay (a clock stepped back) is none.
func delayMicros(d time.Duration) uint32 {
	return uint32(min(max(d.Microseconds(), 0), math.MaxUint32))
}

// claimSize is the encoded size of c.
func claimSize(c Claim) int {
	return 2 + len(c.FailoverIP) + 1 + 1 + len(c.SeenOwner) + 8
}

func appendString8(b []byte, s string) []byte {
	b = append(b, byte(len(s)))
	return append(b, s...)
}

func appendMAC(b, key []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(b)
	return mac.Sum(b)
}

// decode authenticates b with the first of keys that verifies it, then
// parses it. Garbage of any shape returns an error, never a panic. It does
// not check the sender's signature, whose key depends on the sender the
// message names: signedBy does, on the same bytes.
func decode(b []byte, keys ...[]byte) (*message, error) {
	switch {
	case len(b) > MaxDatagramSize:
		return nil, errTooLong
	case len(b) < 5:
		return nil, errTooShort
	case [4]byte(b[:4]) != magic:
		return nil, errMagic
	case b[4] != Version:
		// Before the size: an older agent's datagrams are shorter.
		return nil, fmt.Errorf("%w %d", errVersion, b[4])
	case len(b) < headerMin+trailerSize:
		return nil, errTooShort
	}
	signed, sum := b[:len(b)-macSize], b[len(b)-macSize:]
	if !authentic(signed, sum, keys) {
		return nil, errUnauthenticated
	}
	m, err := parse(signed[:len(signed)-sigSize])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	return m, nil
}

// authentic compares in constant time, so that timing tells an attacker
// nothing about how much of a forged MAC was right.
func authentic(body, sum []byte, keys [][]byte) bool {
	for _, key := range keys {
		if len(key) == 0 {
			continue
		}
		mac := hmac.New(sha256.New, key)
		mac.Write(body)
		if hmac.Equal(mac.Sum(nil), sum) {
			return true
		}
	}
	return false
}

// signedBy tells whether the signature of datagram b, which decode
// accepted, verifies with one of pubs: then b is the work of a holder of
// that private key.
func signedBy(b []byte, pubs []ed25519.PublicKey) bool {
	signed, sig := b[:len(b)-trailerSize], b[len(b)-trailerSize:len(b)-macSize]
	for _, pub := range pubs {
		if ed25519.Verify(pub, signed, sig) {
			return true
		}
	}
	return false
}

// parse reads an authenticated body (everything before the signature).
func parse(body []byte) (*message, error) {
	r := reader{b: body, off: 5}
	m := &message{Type: msgType(r.byte())}
	m.Node = r.string8()
	m.Nonce = r.nonce()
	m.Seq = r.uint64()
	switch m.Type {
	case msgHeartbeat:
		parseHeartbeat(&r, m)
	case msgChallenge:
		m.To = r.string8()
		m.ToNonce = r.nonce()
		m.Challenge = r.nonce()
	default:
		return nil, fmt.Errorf("unknown message type %d", m.Type)
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.off != len(body) {
		return nil, fmt.Errorf("%d trailing bytes", len(body)-r.off)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}

func parseHeartbeat(r *reader, m *message) {
	flags := r.byte()
	if flags&^(flagEcho|flagAck) != 0 {
		r.fail(fmt.Errorf("unknown heartbeat flags %#x", flags))
		return
	}
	if flags&flagEcho != 0 {
		m.HasEcho, m.Echo = true, r.nonce()
	}
	if flags&flagAck != 0 {
		m.HasAck, m.AckNonce, m.AckSeq = true, r.nonce(), r.uint64()
		m.AckDelay = time.Duration(r.uint32()) * time.Microsecond
	}
	count := int(r.uint16())
	// Each claim takes at least 12 bytes: a count beyond what is left is a
	// lie, and must not size an allocation.
	if count > r.left()/12 {
		r.fail(fmt.Errorf("claim count %d exceeds the datagram", count))
		return
	}
	m.Claims = make([]Claim, 0, count)
	for range count {
		c := Claim{FailoverIP: r.string16()}
		flags := r.byte()
		if flags&^(flagHolding|flagWithdrawn) != 0 {
			r.fail(fmt.Errorf("unknown claim flags %#x", flags))
			return
		}
		c.Holding, c.Withdrawn = flags&flagHolding != 0, flags&flagWithdrawn != 0
		c.SeenOwner = r.string8()
		c.SeenEpoch = int64(r.uint64())
		if r.err != nil {
			return
		}
		m.Claims = append(m.Claims, c)
	}
}

// validate checks the names and numbers of m, on both sides of the wire.
func (m *message) validate() error {
	if err := validateNode("node", m.Node); err != nil {
		return err
	}
	switch m.Type {
	case msgHeartbeat:
		for i, c := range m.Claims {
			if err := c.validate(); err != nil {
				return fmt.Errorf("claims[%d]: %w", i, err)
			}
		}
	case msgChallenge:
		return validateNode("challenge target", m.To)
	default:
		return fmt.Errorf("unknown message type %d", m.Type)
	}
	return nil
}

func (c Claim) validate() error {
	if err := validateFailoverIP(c.FailoverIP); err != nil {
		return err
	}
	if c.SeenOwner != "" {
		if err := validateNode("seenOwner", c.SeenOwner); err != nil {
			return fmt.Errorf("%s: %w", c.FailoverIP, err)
		}
	}
	if c.SeenEpoch < 0 {
		return fmt.Errorf("%s: seenEpoch %d is negative", c.FailoverIP, c.SeenEpoch)
	}
	return nil
}

func validateNode(field, name string) error {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("%s %q: %s", field, name, strings.Join(errs, "; "))
	}
	return nil
}

func validateFailoverIP(name string) error {
	namespace, local, ok := strings.Cut(name, "/")
	if !ok {
		return fmt.Errorf("failoverIP %q: want namespace/name", name)
	}
	errs := append(validation.IsDNS1123Label(namespace), validation.IsDNS1123Subdomain(local)...)
	if len(errs) > 0 {
		return fmt.Errorf("failoverIP %q: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

// reader reads big-endian fields; the first error sticks and every later
// read returns zero values, so that parsing code checks once at the end.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) left() int { return len(r.b) - r.off }

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > r.left() {
		r.fail(fmt.Errorf("field of %d bytes at offset %d overruns the message", n, r.off))
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) byte() byte {
	if b := r.next(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) uint16() uint16 {
	if b := r.next(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) uint32() uint32 {
	if b := r.next(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) uint64() uint64 {
	if b := r.next(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *reader) nonce() nonce {
	var n nonce
	copy(n[:], r.next(NonceSize))
	return n
}

func (r *reader) string8() string { return string(r.next(int(r.byte()))) }

func (r *reader) string16() string {
	n := int(r.uint16())
	if n > maxFailoverIPName {
		r.fail(fmt.Errorf("string of %d bytes is too long", n))
		return ""
	}
	return string(r.next(n))
}
