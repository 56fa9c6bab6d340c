package agent

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/webfarm/webfarm/agent/heartbeat"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/metrics"
)

// peerKeysTimeout bounds the write of the node's peer keys.
const peerKeysTimeout = 2 * time.Second

// setUpPeerIdentity loads or makes the node's own peer key, reports its
// public half, and times the round trips. The key signs once it is seen
// published (syncPeerIdentity).
func (a *Agent) setUpPeerIdentity() error {
	id, err := heartbeat.LoadIdentity(a.opts.peerKeyPath(), max(a.opts.PeerKeyMaxAge, 0), a.clock)
	if err != nil {
		return err
	}
	a.identity = id
	a.reporter.update(func(r *report) { r.PeerKeys = id.Published() })
	a.peers.OnRoundTrip(func(d time.Duration) { metrics.PeerRoundTrip.Observe(d.Seconds()) })
	return nil
}

// runPeerIdentity keeps the node's peer identity in line with the cluster
// at every change of the cache and every resync, until ctx is done. Apart
// from the node loop: a first HAProxy start must not delay the keys, which
// the peers need before they hear this node, nor this node's view of
// theirs.
func (a *Agent) runPeerIdentity(ctx context.Context) {
	resync := a.clock.NewTicker(a.opts.Resync)
	defer resync.Stop()
	for {
		if snap, err := readSnapshot(ctx, a.cache, a.opts.NodeName); err == nil {
			a.syncPeerIdentity(ctx, snap)
		}
		select {
		case <-ctx.Done():
			return
		case <-a.identityWake:
		case <-resync.C():
		}
	}
}

// syncPeerIdentity moves the rotation of the node's own key on, from what
// its FrontNode publishes, and gives the peer heartbeats the keys every
// other front publishes: the only keys that may sign as that front. The
// node signs only with a key its FrontNode publishes: before, its peers
// would refuse every heartbeat (a rebooted node makes a new key).
func (a *Agent) syncPeerIdentity(ctx context.Context, snap *snapshot) {
	var published []string
	if snap.self != nil {
		published = snap.self.Status.PeerKeys
	}
	changed, err := a.identity.Step(published)
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Rotating the peer key")
	}
	if changed {
		a.reporter.update(func(r *report) { r.PeerKeys = a.identity.Published() })
	}
	if want := a.identity.Published(); snap.self != nil && !slices.Equal(published, want) && !slices.Equal(a.peerKeysWritten, want) {
		a.peerKeysWritten = nil
		if err := a.writePeerKeys(ctx, want); err != nil {
			logr.FromContextOrDiscard(ctx).Error(err, "Publishing the peer keys")
		} else {
			a.peerKeysWritten = want
		}
	}
	a.checkPeerAddress(ctx, snap)
	if a.identity.PublishedIn(published) {
		a.peers.SetSigner(a.identity.Signer())
	}
	keys := make(map[string][]ed25519.PublicKey, len(snap.fronts))
	for name, front := range snap.fronts {
		if name != snap.node {
			keys[name] = heartbeat.ParsePeerKeys(front.Status.PeerKeys)
		}
	}
	a.peers.SetPeerKeys(keys)
}

// writePeerKeys writes the node's peer keys into its FrontNode status, alone
// and at once: its peers hear it only from then on, while the full report
// waits for HAProxy (runPublisher). A merge patch of that key only, so
// that it changes nothing else of the report.
func (a *Agent) writePeerKeys(ctx context.Context, keys []string) error {
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"peerKeys": keys}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, peerKeysTimeout)
	defer cancel()
	front := &webfarmv1.FrontNode{}
	front.Name = a.opts.NodeName
	if err := a.api.Status().Patch(ctx, front, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("patching the peer keys of FrontNode %s: %w", front.Name, err)
	}
	return nil
}

// checkPeerAddress logs, once per address, a FrontNode that advertises an
// address the peer heartbeats do not listen on (--peer-bind-address): its
// peers' heartbeats cannot reach this node, which they will count unheard.
func (a *Agent) checkPeerAddress(ctx context.Context, snap *snapshot) {
	bound := a.peers.Addr().Addr()
	if snap.self == nil || bound.IsUnspecified() {
		return
	}
	advertised, err := netip.ParseAddr(snap.self.Spec.Address)
	if err != nil || advertised.Unmap() == bound.Unmap() || snap.self.Spec.Address == a.peerAddressWarned {
		return
	}
	a.peerAddressWarned = snap.self.Spec.Address
	logr.FromContextOrDiscard(ctx).Error(nil, "The peer heartbeats listen on another address than the FrontNode advertises: the peers' heartbeats will not reach this node",
		"listening", bound.String(), "advertised", advertised.String())
}
