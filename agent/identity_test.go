package agent

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/webfarm/webfarm/agent/heartbeat"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/testenv"
)

// TestSyncPeerIdentity: the agent writes its key into its FrontNode at
// once, and signs with it only once its cache shows it published; before,
// its peers would refuse every heartbeat.
func TestSyncPeerIdentity(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	peers, err := heartbeat.NewPeers("front1", netip.MustParseAddrPort("127.0.0.1:0"), clk)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- peers.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	peers.SetKey([]byte("0123456789abcdef"))
	peers.SetMembership(heartbeat.Membership{Fronts: map[string]netip.AddrPort{"front2": netip.MustParseAddrPort("127.0.0.1:9")}})

	self, other := front("front1", "127.0.0.1", false), front("front2", "127.0.0.1", false)
	api := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(self.DeepCopy()).WithStatusSubresource(self).Build()
	a := &Agent{opts: Options{NodeName: "front1", StateDir: t.TempDir()}, clock: clk, api: api, peers: peers, reporter: &reporter{node: "front1"}}
	if err := a.setUpPeerIdentity(); err != nil {
		t.Fatal(err)
	}
	published := a.identity.Published()
	if got := a.reporter.current.PeerKeys; len(published) != 1 || !slices.Equal(got, published) {
		t.Fatalf("reported peer keys %v, want the identity's %v", got, published)
	}

	snap := testSnapshot("front1", []*webfarmv1.FrontNode{self, other})
	a.syncPeerIdentity(ctx, snap)
	if err := peers.Send([]string{"front2"}, nil); !errors.Is(err, heartbeat.ErrNoKey) {
		t.Errorf("Send before the key is published: %v, want %v", err, heartbeat.ErrNoKey)
	}
	// Written at once, without waiting for the full report.
	var stored webfarmv1.FrontNode
	if err := api.Get(ctx, client.ObjectKey{Name: "front1"}, &stored); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(stored.Status.PeerKeys, published) {
		t.Errorf("FrontNode front1 publishes %v, want %v", stored.Status.PeerKeys, published)
	}
	self.Status.PeerKeys = published
	a.syncPeerIdentity(ctx, snap)
	if err := peers.Send([]string{"front2"}, nil); err != nil {
		t.Errorf("Send once the key is published: %v", err)
	}
}

// TestSyncPeerIdentityRotates: at its maximum age the key is rotated
// through the FrontNode: the next key is written beside the current one,
// signs once the cache showed both for heartbeat.KeyRotationGrace, and is
// then written alone.
func TestSyncPeerIdentityRotates(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	peers, err := heartbeat.NewPeers("front1", netip.MustParseAddrPort("127.0.0.1:0"), clk)
	if err != nil {
		t.Fatal(err)
	}
	self := front("front1", "127.0.0.1", false)
	api := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(self.DeepCopy()).WithStatusSubresource(self).Build()
	a := &Agent{opts: Options{NodeName: "front1", StateDir: t.TempDir(), PeerKeyMaxAge: time.Hour}, clock: clk, api: api, peers: peers, reporter: &reporter{node: "front1"}}
	if err := a.setUpPeerIdentity(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// sync shows the agent its FrontNode as the API server has it, as its
	// cache would, and returns what it publishes.
	sync := func() []string {
		t.Helper()
		if err := api.Get(ctx, client.ObjectKey{Name: "front1"}, self); err != nil {
			t.Fatal(err)
		}
		a.syncPeerIdentity(ctx, testSnapshot("front1", []*webfarmv1.FrontNode{self}))
		if err := api.Get(ctx, client.ObjectKey{Name: "front1"}, self); err != nil {
			t.Fatal(err)
		}
		return self.Status.PeerKeys
	}
	first := sync()
	if len(first) != 1 {
		t.Fatalf("published %v, want one key", first)
	}
	clk.Step(time.Hour)
	both := sync()
	if len(both) != 2 || both[0] != first[0] {
		t.Fatalf("published %v at the key's maximum age, want %v and the next key", both, first)
	}
	signing := func(key string) bool { return a.identity.PublishedIn([]string{key}) }
	sync()
	clk.Step(heartbeat.KeyRotationGrace)
	if !signing(first[0]) {
		t.Errorf("the next key signs before the grace ran out")
	}
	if got := sync(); !slices.Equal(got, both[1:]) || !signing(both[1]) {
		t.Errorf("after the grace: published %v, want the next key alone %v, and signing with it", got, both[1:])
	}
}
