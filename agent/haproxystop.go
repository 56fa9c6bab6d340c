package agent

import (
	"context"

	"github.com/go-logr/logr"

	"github.com/webfarm/webfarm/agent/prestop"
)

// haproxyStopTick bounds how late the agent sees that the HAProxy beside it
// is about to stop, and so how long its preStop hook waits beyond the
// hand-off itself.
const haproxyStopTick = failoverTick

// haproxyStop follows the hand-off requests of the HAProxy beside the agent
// (package prestop).
type haproxyStop struct {
	// stopping: the report says the node is shutting down because of a
	// request.
	stopping bool
	// answered: the request standing now was answered.
	answered bool
}

// next takes whether a request stands and whether the node holds a failover
// address, and tells whether the report must change (to stopping =
// requested) and whether to answer the request now.
func (s *haproxyStop) next(requested, holding bool) (changed, answer bool) {
	changed = requested != s.stopping
	s.stopping = requested
	if !requested {
		s.answered = false
		return changed, false
	}
	answer = !holding && !s.answered
	s.answered = s.answered || answer
	return changed, answer
}

// runHAProxyStops hands the node's addresses off while the HAProxy beside
// the agent asks it to, before that HAProxy stops: the node then says it is
// shutting down, as an agent that stops does, and the controller moves its
// addresses at once (a planned hand-off). It says so until a HAProxy that
// starts withdraws the request. Runs until ctx is done.
func (a *Agent) runHAProxyStops(ctx context.Context) {
	if !a.opts.HAProxyBeside {
		return
	}
	var s haproxyStop
	tick := a.clock.NewTicker(haproxyStopTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
			a.syncHAProxyStop(ctx, &s)
		}
	}
}

func (a *Agent) syncHAProxyStop(ctx context.Context, s *haproxyStop) {
	log := logr.FromContextOrDiscard(ctx)
	dir := a.opts.StateDir
	requested, err := prestop.Requested(dir)
	if err != nil {
		log.V(1).Info("Cannot read HAProxy's hand-off request; will retry", "error", err.Error())
		return
	}
	holding := true
	if requested {
		snap, err := readSnapshot(ctx, a.cache, a.opts.NodeName)
		holding = err != nil || a.failover.holdsAny(snap)
	}
	changed, answer := s.next(requested, holding)
	if changed {
		a.reporter.update(func(r *report) { r.ShuttingDown = requested })
		a.publishSoon()
		if requested {
			log.Info("HAProxy beside the agent is stopping: handing off the failover addresses")
		} else {
			log.Info("HAProxy beside the agent started again: the node may hold failover addresses")
		}
	}
	if answer {
		if err := prestop.Answer(dir); err != nil {
			log.Error(err, "Cannot tell HAProxy that the failover addresses are handed off; will retry")
			s.answered = false
			return
		}
		log.Info("Failover addresses handed off: HAProxy may stop")
	}
}

// markRunning tells the HAProxy beside the agent, until the returned func
// is called or the process ends however it ends, that an agent runs which
// will answer its hand-off request: a preStop hook stops waiting for a
// dead one.
func (a *Agent) markRunning(ctx context.Context) func() {
	if !a.opts.HAProxyBeside {
		return func() {}
	}
	mark, err := prestop.Running(a.opts.StateDir)
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "HAProxy's preStop hook will not see this agent run")
		return func() {}
	}
	return func() { _ = mark.Close() }
}

// revokeHAProxyStopAnswer takes back the answer that the previous agent
// left at its exit: this one may hold addresses.
func (a *Agent) revokeHAProxyStopAnswer(ctx context.Context) {
	if !a.opts.HAProxyBeside {
		return
	}
	if err := prestop.Revoke(a.opts.StateDir); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Cannot take back the previous agent's hand-off answer")
	}
}

// answerHAProxyStopAtExit tells a HAProxy that stops after the agent has
// exited, or is stopping now, that it need not wait: the agent holds no
// address once its shutdown is over.
func (a *Agent) answerHAProxyStopAtExit(ctx context.Context) {
	if !a.opts.HAProxyBeside {
		return
	}
	if err := prestop.Answer(a.opts.StateDir); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Cannot tell HAProxy that the agent holds no failover address")
	}
}
