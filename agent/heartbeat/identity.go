package heartbeat

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Identity is this node's own signing key for its peer heartbeats, kept in
// a file only the agent reads (mode 0600) and published, public half only,
// in the node's FrontNode status (peerKeys), which only this node's agent
// may write. It rotates a key older than its maximum age: the next key is
// saved, then published beside the current one, and signs only once this
// node has seen both published for KeyRotationGrace, so that every peer
// learnt it first.
type Identity struct {
	path   string
	maxAge time.Duration
	clk    clock.Clock

	mu    sync.Mutex
	state identityState
	// bothSince is when this node first saw its FrontNode publish the
	// current and the next key; zero while it does not.
	bothSince time.Time
}

// identityState is what the key file holds.
type identityState struct {
	Current identityKey  `json:"current"`
	Next    *identityKey `json:"next,omitempty"`
}

type identityKey struct {
	Seed    []byte    `json:"seed"`
	Created time.Time `json:"created"`
}

func (k identityKey) private() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(k.Seed) }

func (k identityKey) public() string {
	return base64.StdEncoding.EncodeToString(k.private().Public().(ed25519.PublicKey))
}

// LoadIdentity reads the key file at path, or makes a new key and saves it
// there when there is none or it cannot be read as one: a new key costs
// only the moments until the peers see it published. A maxAge of 0 never
// rotates. A nil clk is the real clock.
func LoadIdentity(path string, maxAge time.Duration, clk clock.Clock) (*Identity, error) {
	if clk == nil {
		clk = clock.RealClock{}
	}
	id := &Identity{path: path, maxAge: maxAge, clk: clk}
	b, err := os.ReadFile(path)
	if err == nil && json.Unmarshal(b, &id.state) == nil && id.state.valid() {
		return id, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading the peer key: %w", err)
	}
	id.state = identityState{Current: newIdentityKey(clk.Now())}
	if err := id.save(); err != nil {
		return nil, err
	}
	return id, nil
}

func (s identityState) valid() bool {
	return len(s.Current.Seed) == ed25519.SeedSize && (s.Next == nil || len(s.Next.Seed) == ed25519.SeedSize)
}

func newIdentityKey(now time.Time) identityKey {
	seed := make([]byte, ed25519.SeedSize)
	// crypto/rand.Read never fails on Linux; it panics rather than return
	// predictable bytes.
	_, _ = rand.Read(seed)
	return identityKey{Seed: seed, Created: now}
}

// save writes the key file whole, through a file renamed over the old one,
// so that a crash leaves the old key or the new one, never half of either.
func (id *Identity) save() error {
	b, err := json.Marshal(id.state)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(id.path), 0o700); err != nil {
		return fmt.Errorf("saving the peer key: %w", err)
	}
	tmp := id.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("saving the peer key: %w", err)
	}
	if err := os.Rename(tmp, id.path); err != nil {
		return fmt.Errorf("saving the peer key: %w", err)
	}
	return nil
}

// Signer is the key this node signs its heartbeats with now.
func (id *Identity) Signer() ed25519.PrivateKey {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.state.Current.private()
}

// Published is what the node's FrontNode status.peerKeys should say: the
// current key, and the next one during a rotation.
func (id *Identity) Published() []string {
	id.mu.Lock()
	defer id.mu.Unlock()
	keys := []string{id.state.Current.public()}
	if id.state.Next != nil {
		keys = append(keys, id.state.Next.public())
	}
	return keys
}

// PublishedIn tells whether published, a FrontNode's status.peerKeys,
// holds the key Signer signs with: peers can verify it.
func (id *Identity) PublishedIn(published []string) bool {
	id.mu.Lock()
	defer id.mu.Unlock()
	return slices.Contains(published, id.state.Current.public())
}

// Step moves a rotation on, given the keys the node's FrontNode publishes
// now (as this node's cache has it). It tells whether Signer or Published
// changed. A current key older than the maximum age draws a next key,
// saved before it is published, so that a restart publishes the same one.
// The next key becomes the current one once published for
// KeyRotationGrace; the old key is then no longer published, and a peer
// hears nothing more signed with it.
func (id *Identity) Step(published []string) (bool, error) {
	id.mu.Lock()
	defer id.mu.Unlock()
	now := id.clk.Now()
	next := id.state.Next
	switch {
	case next == nil && id.maxAge > 0 && now.Sub(id.state.Current.Created) >= id.maxAge:
		id.state.Next = ptrTo(newIdentityKey(now))
		if err := id.save(); err != nil {
			id.state.Next = nil
			return false, err
		}
		return true, nil
	case next == nil:
		return false, nil
	case !slices.Contains(published, id.state.Current.public()) || !slices.Contains(published, next.public()):
		id.bothSince = time.Time{}
		return false, nil
	case id.bothSince.IsZero():
		id.bothSince = now
		return false, nil
	case now.Sub(id.bothSince) < KeyRotationGrace:
		return false, nil
	}
	old := id.state
	id.state = identityState{Current: *next}
	if err := id.save(); err != nil {
		id.state = old
		return false, err
	}
	id.bothSince = time.Time{}
	return true, nil
}

func ptrTo[T any](v T) *T { return &v }

// MaxPeerKeys is how many keys of one node a receiver tries: the current
// one and, during a rotation, the next.
const MaxPeerKeys = 2

// ParsePeerKeys reads a FrontNode's status.peerKeys, the first MaxPeerKeys
// of them; it skips what is not an Ed25519 public key, which verifies
// nothing anyway.
func ParsePeerKeys(published []string) []ed25519.PublicKey {
	var keys []ed25519.PublicKey
	for _, s := range published[:min(len(published), MaxPeerKeys)] {
		b, err := base64.StdEncoding.DecodeString(s)
		if err == nil && len(b) == ed25519.PublicKeySize && !slices.ContainsFunc(keys, func(k ed25519.PublicKey) bool { return bytes.Equal(k, b) }) {
			keys = append(keys, ed25519.PublicKey(b))
		}
	}
	return keys
}
