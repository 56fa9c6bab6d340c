package agent

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/webfarm/webfarm/agent/ownership"
	"github.com/webfarm/webfarm/agent/vip"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/netnstest"
)

// quietAnnouncer announces nothing: these tests look at the link only.
type quietAnnouncer struct{}

func (quietAnnouncer) Announce(context.Context, netlink.Link, netip.Addr) error { return nil }

// openGate lets every address answer: these tests look at the link only,
// and the dead-man gate has node tests of its own (agent/deadman).
type openGate struct{}

func (openGate) Allow(netip.Addr, time.Duration) error { return nil }
func (openGate) Revoke(netip.Addr) error               { return nil }
func (openGate) Forget(netip.Addr) error               { return nil }

// linkNode is a namespace with one link holding 10.233.0.1/24, and a
// vip.Manager on it that keeps its record in dir.
func linkNode(t *testing.T, dir string) *vip.Manager {
	t.Helper()
	ns := netnstest.New(t)
	ns.MustRun(t, "ip", "link", "add", "wf0", "type", "veth", "peer", "name", "wf1")
	ns.MustRun(t, "ip", "addr", "add", "10.233.0.1/24", "dev", "wf0")
	ns.MustRun(t, "ip", "link", "set", "wf0", "up")
	h, err := ns.Handle()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return &vip.Manager{Handle: h, Gate: openGate{}, NodeIP: netip.MustParseAddr("10.233.0.1"), Announcer: quietAnnouncer{}, RecordPath: filepath.Join(dir, "vips.json")}
}

// TestNodeSettleRemovesOrphanAddresses: in a namespace of its own, a node
// holds the addresses of three FailoverIPs; one is deleted, one recreated
// under the same name (another UID). settle removes exactly their two
// addresses, forgets them, and keeps the third.
func TestNodeSettleRemovesOrphanAddresses(t *testing.T) {
	dir := t.TempDir()
	m := linkNode(t, dir)
	f := &failover{a: &Agent{vips: m}, memory: &memoryFile{path: filepath.Join(dir, "ownership.json")}}

	fip := func(name string, uid types.UID, address string) *webfarmv1.FailoverIP {
		return &webfarmv1.FailoverIP{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: uid},
			Spec:       webfarmv1.FailoverIPSpec{Address: address},
		}
	}
	before := &snapshot{node: "n1", failoverIPs: map[string]*webfarmv1.FailoverIP{
		"ns/kept":      fip("kept", "uid-kept", "10.233.0.10"),
		"ns/deleted":   fip("deleted", "uid-deleted", "10.233.0.11"),
		"ns/recreated": fip("recreated", "uid-old", "10.233.0.12"),
	}}
	ctx := context.Background()
	f.settle(ctx, before)
	for key, obj := range before.failoverIPs {
		must(t, f.memory.set(key, ownership.Memory{Holding: true, HeldEpoch: 5}))
		addr, err := vipAddress(key, obj, 5)
		must(t, err)
		must(t, m.Ensure(ctx, addr, time.Minute))
	}

	after := &snapshot{node: "n1", failoverIPs: map[string]*webfarmv1.FailoverIP{
		"ns/kept":      before.failoverIPs["ns/kept"],
		"ns/recreated": fip("recreated", "uid-new", "10.233.0.12"),
	}}
	f.settle(ctx, after)

	for _, tc := range []struct {
		key, address string
		held         bool
	}{
		{"ns/kept", "10.233.0.10", true},
		{"ns/deleted", "10.233.0.11", false},
		{"ns/recreated", "10.233.0.12", false},
	} {
		on, err := m.Held(vip.Address{IP: netip.MustParseAddr(tc.address)})
		must(t, err)
		if on != tc.held {
			t.Errorf("%s: address %s on the link = %v, want %v", tc.key, tc.address, on, tc.held)
		}
		if got := f.memory.get(tc.key); got.Holding != tc.held || (!tc.held && got != (ownership.Memory{})) {
			t.Errorf("%s: memory %+v, want holding %v and nothing else remembered", tc.key, got, tc.held)
		}
	}
}

// TestNodeRestartRemovesWhatItDoesNotHold: a previous agent process left two
// failover addresses on the link. The restarted agent removes, before it
// reports anything, every one its memory does not hold — both when it
// finds no memory — so that it never reports Released for an address still
// answering (finding of internal/failoversim,
// TestScenarioStatelessRestartReleasesNothing).
func TestNodeRestartRemovesWhatItDoesNotHold(t *testing.T) {
	for _, withMemory := range []bool{true, false} {
		t.Run(fmt.Sprintf("with memory %v", withMemory), func(t *testing.T) {
			dir := t.TempDir()
			m := linkNode(t, dir)
			path := filepath.Join(dir, "ownership.json")
			ctx := context.Background()
			objects := map[string]heldObject{"ns/held": {UID: "uid-held", Address: "10.233.0.10"}, "ns/lost": {UID: "uid-lost", Address: "10.233.0.11"}}
			previous := &memoryFile{path: path}
			must(t, previous.load())
			must(t, previous.bind(objects))
			must(t, previous.set("ns/held", ownership.Memory{Holding: true, HeldEpoch: 3}))
			for key, obj := range objects {
				must(t, m.Ensure(ctx, vip.Address{IP: netip.MustParseAddr(obj.Address), FailoverIP: key, Epoch: 3}, time.Minute))
			}
			if !withMemory {
				must(t, os.Remove(path))
			}

			f := &failover{a: &Agent{vips: m}, memory: &memoryFile{path: path}}
			f.restore(ctx)
			for key, obj := range objects {
				want := withMemory && key == "ns/held"
				on, err := m.Held(vip.Address{IP: netip.MustParseAddr(obj.Address)})
				must(t, err)
				if on != want {
					t.Errorf("%s: address %s on the link after the restart = %v, want %v", key, obj.Address, on, want)
				}
			}
			if f.leftovers {
				t.Error("restore reports leftovers it removed")
			}
		})
	}
}
