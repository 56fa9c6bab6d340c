package vip

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"
)

// ErrReleasing says that an address is revoked and removed but its release
// hook still runs: the release is not done until a later Release returns
// nil.
var ErrReleasing = errors.New("the release hook is still running")

// run is a takeover (announcements, then the takeover hook) or a release
// hook of one address at one epoch, beside the agent's decisions. The runs
// of an address follow one another, so that hooks never overlap.
type run struct {
	action HookAction
	epoch  int64
	cancel context.CancelFunc
	done   chan struct{}
	// err is the outcome, set before done is closed.
	err error
	// forwarded says that a hand-off passes the address's packets on
	// already, so that its removal is all that is left.
	forwarded bool
	// promotion says that the run is a master hook run before the address
	// was added (Notify.MasterFirst): the address was never announced, so
	// a release after it runs the notify hook alone, not Manager.Hook.
	promotion bool
	// after is the run that this one waits for before it starts.
	after *run
}

// finished reports whether r ended, and how.
func (r *run) finished() (bool, error) {
	select {
	case <-r.done:
		return true, r.err
	default:
		return false, nil
	}
}

// takeOver starts the takeover of a unless one for its epoch is running or
// succeeded and the address did not have to be added again. It returns the
// error of an earlier takeover that failed, which it starts again.
func (m *Manager) takeOver(ctx context.Context, a Address, link netlink.Link, added bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.runs[a.IP]
	var failed error
	if prev != nil && prev.action == HookTakeover {
		ended, err := prev.finished()
		if prev.epoch == a.Epoch && !added && (!ended || err == nil) {
			return nil
		}
		if !errors.Is(err, context.Canceled) {
			failed = err
		}
		prev.cancel()
	}
	// A release hook still running is not stopped: the takeover waits.
	m.start(ctx, HookTakeover, a, link, prev)
	return failed
}

// release starts the release hook of a once, after its takeover, and
// reports ErrReleasing until it succeeded; it returns the error of a
// release hook that failed, which it starts again. removed says whether
// the address was on the node.
func (m *Manager) release(ctx context.Context, a Address, link netlink.Link, removed bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.runs[a.IP]
	var failed error
	if prev != nil && prev.action == HookRelease {
		ended, err := prev.finished()
		switch {
		case !ended:
			return ErrReleasing
		case err == nil:
			delete(m.runs, a.IP)
			return nil
		}
		failed = err
	}
	if prev == nil && !removed {
		return nil
	}
	if path, _ := m.notifyPath(notifyState(HookRelease, a), a); m.Hook == nil && path == "" {
		delete(m.runs, a.IP)
		logReleased(ctx, a, link)
		return nil
	}
	m.start(ctx, HookRelease, a, link, prev)
	if failed != nil {
		return failed
	}
	return ErrReleasing
}

// start runs action for a after prev ended, in a goroutine that only a
// later run or Release cancels, not the caller's context; it keeps the
// caller's logger. The caller holds m.mu.
func (m *Manager) start(ctx context.Context, action HookAction, a Address, link netlink.Link, prev *run) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &run{action: action, epoch: a.Epoch, cancel: cancel, done: make(chan struct{})}
	if m.runs == nil {
		m.runs = make(map[netip.Addr]*run)
	}
	m.runs[a.IP] = r
	go func() {
		defer close(r.done)
		defer cancel()
		if prev != nil {
			<-prev.done
		}
		r.err = m.carryOut(rctx, action, a, link, prev != nil && prev.promotion)
		if err := rctx.Err(); err != nil && r.err != nil {
			r.err = err // stopped, not failed
		}
	}()
}

// carryOut announces and runs the hooks of action; afterPromotion says that
// the release follows a master hook stopped before the address was added,
// which never announced it: only the notify hook runs then.
func (m *Manager) carryOut(ctx context.Context, action HookAction, a Address, link netlink.Link, afterPromotion bool) error {
	name := link.Attrs().Name
	if action == HookTakeover {
		actx, stop := m.whileGranted(ctx, a.IP)
		err := m.announcer().Announce(actx, link, a.IP)
		stop()
		if err != nil {
			return err
		}
	}
	if m.Hook != nil && !afterPromotion {
		if err := m.Hook.Run(ctx, action, a, name); err != nil {
			return err
		}
	}
	if action != HookTakeover || !m.promoted(a) {
		if err := m.notify(ctx, notifyState(action, a), a, name); err != nil {
			return err
		}
	}
	if action == HookTakeover {
		logr.FromContextOrDiscard(ctx).Info("Took over failover address", "address", a.IP, "interface", name, "failoverIP", a.FailoverIP, "epoch", a.Epoch)
	} else {
		logReleased(ctx, a, link)
	}
	return nil
}

// notifyState is the notify hook a takeover or release runs: master after
// a takeover (unless it ran before the address was added), fault after a
// fence, backup after any other release.
func notifyState(action HookAction, a Address) NotifyState {
	switch {
	case action == HookTakeover:
		return NotifyMaster
	case a.Fault:
		return NotifyFault
	}
	return NotifyBackup
}

func logReleased(ctx context.Context, a Address, link netlink.Link) {
	logr.FromContextOrDiscard(ctx).Info("Released failover address", "address", a.IP, "interface", link.Attrs().Name, "failoverIP", a.FailoverIP, "epoch", a.Epoch)
}

// stopTakeover cancels a takeover of ip that is running, without waiting
// for it. The caller holds m.mu.
func (m *Manager) stopTakeover(ip netip.Addr) {
	if r := m.runs[ip]; r != nil && r.action == HookTakeover {
		r.cancel()
	}
	m.stopPromotion(ip)
}

// whileGranted returns a context that ends with ctx, or once the gate's
// grant of ip has run out without a renewal: an announcement goes out from
// a packet socket, which no gate filters, and one sent after the grant
// (its goroutine slowed down past it) would draw the clients to a node
// that no longer answers, and claim the address beside its next holder.
func (m *Manager) whileGranted(ctx context.Context, ip netip.Addr) (context.Context, context.CancelFunc) {
	gctx, cancel := context.WithCancel(ctx)
	go func() {
		defer cancel()
		for {
			m.mu.Lock()
			end := m.grantEnds[ip]
			m.mu.Unlock()
			left := time.Until(end)
			if left <= 0 {
				return
			}
			t := time.NewTimer(left)
			select {
			case <-gctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
	return gctx, cancel
}
