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
		"WEBFARM_NODE=" + m.NodeName,
	}
	out, err := command.Run(ctx, path, []string{string(state)}, env, timeout)
	logr.FromContextOrDiscard(ctx).Info("Ran notify hook", "hook", path, "state", state, "failoverIP", a.FailoverIP, "epoch", a.Epoch, "error", err, "output", out)
	if err != nil {
		err = fmt.Errorf("%s hook %s: %w", state, filepath.Base(path), err)
	}
	m.notified(NotifyRun{FailoverIP: a.FailoverIP, State: state, Epoch: a.Epoch, Err: err, Output: out, Finished: time.Now()})
	return err
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
// new run) after it failed.
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
		prev.cancel()
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

// startPromotion starts a's master hook; the caller holds m.mu.
func (m *Manager) startPromotion(ctx context.Context, a Address) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &run{action: HookTakeover, epoch: a.Epoch, cancel: cancel, done: make(chan struct{})}
	m.promotions[a.IP] = r
	go func() {
		defer close(r.done)
		defer cancel()
		iface := a.Interface
		r.err = m.notify(rctx, NotifyMaster, a, iface)
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
// added; the caller holds m.mu.
func (m *Manager) stopPromotion(ip netip.Addr) {
	if r := m.promotions[ip]; r != nil {
		r.cancel()
		delete(m.promotions, ip)
	}
}
