package agent

import (
	"context"
	"crypto/ed25519"
	"time"

	"github.com/go-logr/logr"

	"github.com/webfarm/webfarm/agent/heartbeat"
	"github.com/webfarm/webfarm/internal/metrics"
)

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
