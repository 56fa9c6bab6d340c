package vip

import (
	"context"
	"errors"
	"net/netip"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"
)

// takeover announces one address at one epoch and runs the takeover hook,
// beside the agent's decisions.
type takeover struct {
	epoch  int64
	cancel context.CancelFunc
	done   chan struct{}
	// err is the outcome, set before done is closed.
	err error
}

// finished reports whether t ended, and how.
func (t *takeover) finished() (bool, error) {
	select {
	case <-t.done:
		return true, t.err
	default:
		return false, nil
	}
}

// takeOver starts the takeover of a unless one for its epoch is running or
// succeeded and the address did not have to be added again. It returns the
// error of an earlier attempt that failed, which it starts again.
func (m *Manager) takeOver(ctx context.Context, a Address, link netlink.Link, added bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.takeovers[a.IP]
	var failed error
	if prev != nil {
		ended, err := prev.finished()
		if prev.epoch == a.Epoch && !added && (!ended || err == nil) {
			return nil
		}
		if !errors.Is(err, context.Canceled) {
			failed = err
		}
		prev.cancel()
	}
	// Cancelled only by Release or a newer takeover, not by the caller's
	// pass; it keeps the caller's logger.
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t := &takeover{epoch: a.Epoch, cancel: cancel, done: make(chan struct{})}
	if m.takeovers == nil {
		m.takeovers = make(map[netip.Addr]*takeover)
	}
	m.takeovers[a.IP] = t
	go m.runTakeover(tctx, t, prev, a, link)
	return failed
}

// runTakeover announces a and runs the takeover hook, after the previous
// takeover of the address ended, so that hooks never overlap.
func (m *Manager) runTakeover(ctx context.Context, t, prev *takeover, a Address, link netlink.Link) {
	defer close(t.done)
	defer t.cancel()
	if prev != nil {
		<-prev.done
	}
	name := link.Attrs().Name
	t.err = m.announcer().Announce(ctx, link, a.IP)
	if t.err == nil && m.Hook != nil {
		t.err = m.Hook.Run(ctx, HookTakeover, a, name)
	}
	if err := ctx.Err(); err != nil && t.err != nil {
		t.err = err // stopped, not failed
	}
	if t.err == nil {
		logr.FromContextOrDiscard(ctx).Info("Took over failover address", "address", a.IP, "interface", name, "failoverIP", a.FailoverIP, "epoch", a.Epoch)
	}
}

// stopTakeover cancels the takeover of ip and waits for it to end; it
// reports whether this process started one.
func (m *Manager) stopTakeover(ip netip.Addr) bool {
	m.mu.Lock()
	t := m.takeovers[ip]
	m.mu.Unlock()
	if t == nil {
		return false
	}
	t.cancel()
	<-t.done
	return true
}
