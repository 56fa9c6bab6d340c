package agent

import (
	"context"
	"time"

	"github.com/go-logr/logr"
)

// finalReportTimeout bounds the last status write of a shutdown, which the
// API server may not answer.
const finalReportTimeout = 2 * time.Second

// shutdown hands off the addresses this node holds: it says in its status
// that it is shutting down, so that the controller asks it to release them
// and gives them to other fronts at once (a planned hand-off, with no
// deadtime wait), and waits for that up to ShutdownGrace. Whatever it still
// holds then is removed anyway. ctx must outlive the agent's own context.
func (a *Agent) shutdown(ctx context.Context) {
	log := logr.FromContextOrDiscard(ctx)
	ctx, cancel := context.WithTimeout(ctx, a.opts.ShutdownGrace)
	defer cancel()
	log.Info("Shutting down: handing off the failover addresses", "grace", a.opts.ShutdownGrace)
	a.reporter.update(func(r *report) { r.ShuttingDown = true })

	tick := a.clock.NewTicker(failoverTick)
	defer tick.Stop()
	for {
		a.publish(ctx)
		snap, err := readSnapshot(ctx, a.cache, a.opts.NodeName)
		if err == nil && !a.failover.holdsAny(snap) {
			log.Info("Failover addresses handed off")
			return
		}
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalReportTimeout)
			defer cancel()
			if snap != nil {
				a.failover.releaseAll(final, snap)
			}
			a.publishWithin(final, finalReportTimeout)
			log.Info("Shutdown grace over: removed the failover addresses still held")
			return
		case <-tick.C():
		}
	}
}
