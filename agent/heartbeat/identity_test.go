package heartbeat

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func loadIdentity(t *testing.T, path string, maxAge time.Duration, clk *clocktesting.FakeClock) *Identity {
	t.Helper()
	id, err := LoadIdentity(path, maxAge, clk)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestIdentityKeptAcrossRestarts(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "state", "peer-key.json")
	first := loadIdentity(t, path, 0, clk)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode %v, want 0600", mode)
	}
	again := loadIdentity(t, path, 0, clk)
	if !bytes.Equal(first.Signer(), again.Signer()) || !slices.Equal(first.Published(), again.Published()) {
		t.Errorf("a restart made another key: its peers would not hear it until they see it published")
	}
	if got := ParsePeerKeys(again.Published()); len(got) != 1 || !got[0].Equal(publicKey(first.Signer())) {
		t.Errorf("published %v, want the public half of the signing key", again.Published())
	}

	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := loadIdentity(t, path, 0, clk)
	if bytes.Equal(fresh.Signer(), first.Signer()) {
		t.Errorf("an unreadable key file kept the old key")
	}
}

// TestIdentityRotation steps a rotation through what the node's FrontNode
// publishes, as its cache shows it.
func TestIdentityRotation(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "peer-key.json")
	const maxAge = 24 * time.Hour
	id := loadIdentity(t, path, maxAge, clk)
	old := id.Published()
	step := func(published []string) bool {
		t.Helper()
		changed, err := id.Step(published)
		if err != nil {
			t.Fatal(err)
		}
		return changed
	}

	clk.Step(maxAge - time.Second)
	if step(old) {
		t.Fatalf("rotated a key younger than its maximum age")
	}
	clk.Step(time.Second)
	if !step(old) {
		t.Fatalf("no rotation of a key of its maximum age")
	}
	both := id.Published()
	if len(both) != 2 || both[0] != old[0] {
		t.Fatalf("published %v during the rotation, want the old key then the next", both)
	}
	signer := id.Signer()

	// A restart during the rotation publishes the same next key.
	id = loadIdentity(t, path, maxAge, clk)
	if !slices.Equal(id.Published(), both) {
		t.Fatalf("after a restart, published %v, want %v", id.Published(), both)
	}
	if !id.PublishedIn(old) || id.PublishedIn(both[1:]) {
		t.Fatalf("the old key signs until the switch")
	}

	// Not before this node saw both published, and then KeyRotationGrace.
	clk.Step(time.Hour)
	if step(old) || !bytes.Equal(id.Signer(), signer) {
		t.Fatalf("switched keys before the next one was published")
	}
	if step(both) {
		t.Fatalf("switched keys as soon as the next one was seen published")
	}
	clk.Step(KeyRotationGrace - time.Second)
	if step(both) {
		t.Fatalf("switched keys before the grace ran out")
	}
	clk.Step(time.Second)
	if !step(both) {
		t.Fatalf("no switch after the grace")
	}
	if got := id.Published(); !slices.Equal(got, both[1:]) {
		t.Errorf("published %v after the switch, want the next key alone %v", got, both[1:])
	}
	if bytes.Equal(id.Signer(), signer) || !id.PublishedIn(both) || id.PublishedIn(old) {
		t.Errorf("still signing with the old key")
	}
	id = loadIdentity(t, path, maxAge, clk)
	if !slices.Equal(id.Published(), both[1:]) {
		t.Errorf("after a restart, published %v, want %v", id.Published(), both[1:])
	}
	if step(both) {
		t.Errorf("a new key rotated at once")
	}
}

func TestParsePeerKeys(t *testing.T) {
	a, b := publicKey(nodeKey("a")), publicKey(nodeKey("b"))
	enc := base64.StdEncoding.EncodeToString
	tests := []struct {
		name      string
		published []string
		want      int
	}{
		{"none", nil, 0},
		{"one", []string{enc(a)}, 1},
		{"two", []string{enc(a), enc(b)}, 2},
		{"a third is ignored", []string{enc(a), enc(b), enc(publicKey(nodeKey("c")))}, 2},
		{"a duplicate counts once", []string{enc(a), enc(a)}, 1},
		{"not base64", []string{"!!!", enc(b)}, 1},
		{"too short", []string{enc(a[:31])}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParsePeerKeys(tt.published); len(got) != tt.want {
				t.Errorf("ParsePeerKeys = %d keys, want %d", len(got), tt.want)
			}
		})
	}
}
