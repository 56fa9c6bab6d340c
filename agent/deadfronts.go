package agent

import (
	"context"
	"time"

	"github.com/go-logr/logr"

	"github.com/webfarm/webfarm/agent/deadfront"
	"github.com/webfarm/webfarm/agent/haproxy"
	"github.com/webfarm/webfarm/agent/ownership"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// deadFrontTick bounds how late a front silent beyond its deadtime is marked
// down in this node's HAProxy. It is well below the shortest deadtime, so
// that the mark lands before the address of a dead owner moves.
const deadFrontTick = failoverTick

// runDeadFronts marks down, in this node's HAProxy, the servers of every
// front the failover protocol considers dead, until ctx is done.
func (a *Agent) runDeadFronts(ctx context.Context) {
	tick := a.clock.NewTicker(deadFrontTick)
	defer tick.Stop()
	var stops deadfront.Stops
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
			a.syncDeadFronts(ctx, &stops)
		}
	}
}

func (a *Agent) syncDeadFronts(ctx context.Context, stops *deadfront.Stops) {
	snap, err := readSnapshot(ctx, a.cache, a.opts.NodeName)
	if err != nil {
		return
	}
	dead, why := deadFrontServers(snap, a.peers.View, stops, a.clock.Now())
	marked, err := a.deadFronts.Sync(ctx, dead)
	log := logr.FromContextOrDiscard(ctx)
	for _, front := range marked {
		log.Info("Marked a dead front's servers down in HAProxy", "front", front, "reason", why[front])
	}
	if err != nil {
		// Tried again at every tick: while HAProxy is not running, or has
		// not loaded a new front yet, this would flood the log.
		log.V(1).Info("Dead front's servers not marked down; will retry", "error", err.Error())
	}
}

// deadFrontServers returns the servers, in this node's HAProxy, of every
// other front that is dead at now, by front, and why each is dead. view is
// what the peers said of a failover IP (heartbeat.Peers.View); stops
// remembers the fronts whose agents said they were shutting down: an agent
// restart silences a front whose web server still serves.
func deadFrontServers(snap *snapshot, view func(failoverIP string) []ownership.Peer, stops *deadfront.Stops, now time.Time) (map[string][]deadfront.Server, map[string]string) {
	heard := heardFronts(snap, view)
	stopped := map[string]bool{}
	for name, front := range snap.fronts {
		stopped[name] = stops.Stopped(name, front.Status.ShuttingDown, heard[name], now)
	}
	dead, why := map[string][]deadfront.Server{}, map[string]string{}
	for _, farm := range snap.farmKeys() {
		backend := haproxy.BackendName(farm)
		for _, front := range snap.frontsOf(farm) {
			if front.Name == snap.node {
				continue
			}
			isDead, reason := deadfront.Dead(deadfront.Front{
				Name:     front.Name,
				Down:     front.Status.Phase == webfarmv1.FrontDown,
				Draining: front.Spec.DrainRequested,
				Stopped:  stopped[front.Name],
				Heard:    heard[front.Name],
			}, now)
			if !isDead {
				continue
			}
			main, backup := haproxy.ServerNames(front.Name)
			dead[front.Name] = append(dead[front.Name], deadfront.Server{Backend: backend, Name: main}, deadfront.Server{Backend: backend, Name: backup})
			why[front.Name] = reason
		}
	}
	return dead, why
}

// heardFronts is, by node, the last heartbeat of each failover IP the node
// sent claims for, with that failover IP's deadtime.
func heardFronts(snap *snapshot, view func(failoverIP string) []ownership.Peer) map[string][]deadfront.Heard {
	heard := map[string][]deadfront.Heard{}
	for key, fip := range snap.failoverIPs {
		timing, _ := ownership.TimingOf(fip)
		for _, p := range view(key) {
			heard[p.Node] = append(heard[p.Node], deadfront.Heard{LastHeard: p.LastHeard, Deadtime: timing.Deadtime})
		}
	}
	return heard
}
