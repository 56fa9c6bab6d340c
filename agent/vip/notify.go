package vip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"

	"github.com/webfarm/webfarm/agent/command"
)

// NotifyState is the transition a notify hook runs for, as keepalived's
// notify_master, notify_backup and notify_fault.
type NotifyState string

const (
	NotifyMaster NotifyState = "master"
	NotifyBackup NotifyState = "backup"
	NotifyFault  NotifyState = "fault"
)

// ErrPromoting says that the address waits for its master hook, which must
// succeed before the address is added and announced (Notify.MasterFirst).
var ErrPromoting = errors.New("the master hook runs before the address is announced")

// DefaultNotifyTimeout bounds a notify hook when Notify.Timeout is zero.
const DefaultNotifyTimeout = 30 * time.Second

// Notify names the notify hooks of one FailoverIP, as file names in
// Manager.HooksDir: a FailoverIP never names a path, so that no user of the
// API can make the agent run a program of their choice.
type Notify struct {
	Master, Backup, Fault string
	Timeout               time.Duration
	// MasterFirst runs the master hook, and waits for it to succeed,
	// before the address is added: promote first, then take the address.
	MasterFirst bool
}

// NotifyRun is the outcome of one notify hook.
type NotifyRun struct {
	FailoverIP string
	State      NotifyState
	Epoch      int64
	Running    bool
	Err        error
	Output     string
	Finished   time.Time
}

// notify runs the notify hook of state for a, if a names one, and tells
// Manager.Notified how it went.
func (m *Manager) notify(ctx context.Context, state NotifyState, a Address, iface string) error {
	path, timeout := m.notifyPath(state, a)
	if path == "" {
		return nil
	}
	m.notified(NotifyRun{FailoverIP: a.FailoverIP, State: state, Epoch: a.Epoch, Running: true})
	env := []string{
		"WEBFARM_STATE=" + string(state),
		"WEBFARM_FAILOVERIP=" + a.FailoverIP,
		"WEBFARM_ADDRESS=" + a.IP.String(),
		"WEBFARM_INTERFACE=" + iface,
		"WEBFARM_EPOCH=" + strconv.FormatInt(a.Epoch, 10),
		"WEBFARM_PREVIOUS_OWNER=" + a.PreviousOwner,
		"WEBFARM_LAST_OWNER=" + a.LastOwner,
		"WEBFARM_LAST_OWNER_EPOCH=" + strconv.FormatInt(a.LastOwnerEpoch, 10),
		"WEBFARM_NODE=" + m.NodeName,
		"WEBFARM_PROMOTED_EPOCH=" + m.promotedEpoch(a.IP),
	}
	start := time.Now()
	out, err := command.Run(ctx, path, []string{string(state)}, env, timeout)
	if state == NotifyMaster && err == nil {
		m.setPromoted(a.IP, a.Epoch)
	}
	logr.FromContextOrDiscard(ctx).Info("Ran notify hook", "hook", path, "state", state, "failoverIP", a.FailoverIP, "epoch", a.Epoch,
		"took", time.Since(start).Round(time.Millisecond).String(), "error", err, "output", out)
	if err != nil {
		err = fmt.Errorf("%s hook %s: %w", state, filepath.Base(path), err)
	}
	m.notified(NotifyRun{FailoverIP: a.FailoverIP, State: state, Epoch: a.Epoch, Err: err, Output: out, Finished: time.Now()})
	return err
}

// promotedEpoch is the epoch at which the master hook of ip last
// succeeded in this process; "" when it never did. A master hook that finds
// its server fenced at that same epoch knows that this node made it the
// primary at that epoch, and fenced it itself since (it could not prove
// itself alive for a moment): nobody else was named owner in between,
// since the epoch would have changed.
func (m *Manager) promotedEpoch(ip netip.Addr) string {
	epoch, ok := m.PromotedAt(ip)
	if !ok {
		return ""
	}
	return strconv.FormatInt(epoch, 10)
}

// PromotedAt is the epoch at which the master hook of ip last succeeded
// in this process; ok is false when it never did.
func (m *Manager) PromotedAt(ip netip.Addr) (epoch int64, ok bool) {
	m.promotedMu.Lock()
	defer m.promotedMu.Unlock()
	epoch, ok = m.promotedAt[ip]
	return epoch, ok
}

func (m *Manager) setPromoted(ip netip.Addr, epoch int64) {
	m.promotedMu.Lock()
	defer m.promotedMu.Unlock()
	if m.promotedAt == nil {
		m.promotedAt = map[netip.Addr]int64{}
	}
	m.promotedAt[ip] = epoch
}

// notifyPath is the hook of state for a, and its timeout; "" when none.
func (m *Manager) notifyPath(state NotifyState, a Address) (string, time.Duration) {
	if a.Notify == nil || m.HooksDir == "" {
		return "", 0
	}
	name := map[NotifyState]string{NotifyMaster: a.Notify.Master, NotifyBackup: a.Notify.Backup, NotifyFault: a.Notify.Fault}[state]
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
		return "", 0
	}
	timeout := a.Notify.Timeout
	if timeout <= 0 {
		timeout = DefaultNotifyTimeout
	}
	return filepath.Join(m.HooksDir, name), timeout
}

func (m *Manager) notified(r NotifyRun) {
	if m.Notified != nil {
		m.Notified(r)
	}
}

// masterFirst tells whether a's master hook must succeed before it is
// added.
func (m *Manager) masterFirst(a Address) bool {
	path, _ := m.notifyPath(NotifyMaster, a)
	return path != "" && a.Notify.MasterFirst
}

// promote runs a's master hook beside the caller, once per epoch until it
// succeeds: nil once it did, ErrPromoting while it runs, its error (and a
// new run) after it failed. A hook still running from an earlier epoch is
// not stopped: it counts for a's.
func (m *Manager) promote(ctx context.Context, a Address) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.promotions == nil {
		m.promotions = map[netip.Addr]*run{}
	}
	prev := m.promotions[a.IP]
	if prev != nil && prev.epoch == a.Epoch {
		ended, err := prev.finished()
		switch {
		case !ended:
			return ErrPromoting
		case err == nil:
			return nil
		}
		m.startPromotion(ctx, a)
		return err
	}
	if prev != nil {
		if ended, _ := prev.finished(); !ended {
			// A new epoch of this same owner (renewed, or named again
			// after an epoch without owner: a release in between would
			// have stopped it) while its master hook runs. Killed
			// half-way, the hook could leave the server neither replica
			// nor primary; it goes on and counts for the new epoch.
			prev.epoch = a.Epoch
			return ErrPromoting
		}
	}
	m.startPromotion(ctx, a)
	return ErrPromoting
}

// promoteUnlessHeld promotes a first unless its address is on link
// already: a node that holds it at a new epoch (renewed as the same owner,
// or restarted) must keep renewing its grant, and its takeover runs the
// master hook again after, as it would without MasterFirst.
func (m *Manager) promoteUnlessHeld(ctx context.Context, a Address, link netlink.Link) error {
	m.mu.Lock()
	found, err := findAddr(m.Handle, link, a.IP)
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("checking %s: %w", a.IP, err)
	}
	if len(found) > 0 {
		return nil
	}
	return m.promote(ctx, a)
}

// startPromotion starts a's master hook once the run of a's address that
// this process started last has ended, so that hooks never overlap (a
// backup hook of an earlier epoch may still be fencing the server); the
// caller holds m.mu.
func (m *Manager) startPromotion(ctx context.Context, a Address) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &run{action: HookTakeover, epoch: a.Epoch, cancel: cancel, done: make(chan struct{}), promotion: true, after: m.runs[a.IP]}
	m.promotions[a.IP] = r
	go func() {
		defer close(r.done)
		defer cancel()
		if r.after != nil {
			<-r.after.done
		}
		r.err = m.notify(rctx, NotifyMaster, a, a.Interface)
		if err := rctx.Err(); err != nil && r.err != nil {
			r.err = err // stopped, not failed
		}
	}()
}

// promoted tells whether a's master hook already ran for its epoch, before
// the address was added; the takeover then does not run it again.
func (m *Manager) promoted(a Address) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.promotions[a.IP]
	if r == nil || r.epoch != a.Epoch {
		return false
	}
	ended, err := r.finished()
	return ended && err == nil
}

// stopPromotion cancels a's master hook that runs before its address is
// added; the caller holds m.mu. A master hook that started, even stopped
// half-way, may have made the server writable: unless the address was
// taken over since (its takeover run is then the last), the promotion
// becomes the address's last run, so that the release runs the backup or
// fault hook after it, as it would after a takeover.
func (m *Manager) stopPromotion(ip netip.Addr) {
	r := m.promotions[ip]
	if r == nil {
		return
	}
	r.cancel()
	delete(m.promotions, ip)
	if m.runs[ip] == r.after {
		if m.runs == nil {
			m.runs = make(map[netip.Addr]*run)
		}
		m.runs[ip] = r
	}
}
