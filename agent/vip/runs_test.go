package vip

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
)

// flakyAnnouncer fails its first failures calls, and counts them all.
type flakyAnnouncer struct {
	mu       sync.Mutex
	calls    int
	failures int
}

var errLinkDown = errors.New("link down")

func (f *flakyAnnouncer) Announce(context.Context, netlink.Link, netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.failures {
		return errLinkDown
	}
	return nil
}

func (f *flakyAnnouncer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// settle waits for the last run of ip to end.
func (m *Manager) settle(ip netip.Addr) {
	m.mu.Lock()
	r := m.runs[ip]
	m.mu.Unlock()
	if r != nil {
		<-r.done
	}
}

// TestTakeOverRuns: one takeover per epoch; a failed one is reported by the
// next call and started again; a new epoch, or an address that had to be
// added again, is a new takeover.
func TestTakeOverRuns(t *testing.T) {
	ann := &flakyAnnouncer{failures: 1}
	m := &Manager{Announcer: ann}
	link := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}}
	ctx := context.Background()
	a := Address{IP: netip.MustParseAddr("192.0.2.10"), FailoverIP: "shop/www", Epoch: 1}

	steps := []struct {
		name      string
		epoch     int64
		added     bool
		wantErr   error
		wantCalls int
	}{
		{"first takeover, which fails", 1, true, nil, 1},
		{"the failure reported, the takeover started again", 1, false, errLinkDown, 2},
		{"done at this epoch", 1, false, nil, 2},
		{"the address had to be added again", 1, true, nil, 3},
		{"a new epoch", 2, false, nil, 4},
		{"done at the new epoch", 2, false, nil, 4},
	}
	for _, s := range steps {
		a.Epoch = s.epoch
		err := m.takeOver(ctx, a, link, s.added)
		m.settle(a.IP)
		if !errors.Is(err, s.wantErr) {
			t.Errorf("%s: takeOver = %v, want %v", s.name, err, s.wantErr)
		}
		if got := ann.count(); got != s.wantCalls {
			t.Errorf("%s: %d announcements in all, want %d", s.name, got, s.wantCalls)
		}
	}
}

// TestReleaseRuns: without a hook a release is done at once; with one,
// Release reports ErrReleasing until the hook succeeded, and a failed hook
// is reported and run again.
func TestReleaseRuns(t *testing.T) {
	link := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}}
	ctx := context.Background()
	a := Address{IP: netip.MustParseAddr("192.0.2.10"), FailoverIP: "shop/www", Epoch: 1}

	m := &Manager{Announcer: &flakyAnnouncer{}}
	if err := m.release(ctx, a, link, false); err != nil {
		t.Errorf("release of an address never here, without hook: %v", err)
	}
	if err := m.release(ctx, a, link, true); err != nil {
		t.Errorf("release without hook: %v, want done at once", err)
	}

	dir := t.TempDir()
	// Fails on its first run, succeeds after.
	m.Hook = &Hook{Path: writeScript(t, dir, `[ -e "$(dirname "$0")/ran" ] && exit 0; touch "$(dirname "$0")/ran"; exit 1`)}
	steps := []struct {
		name    string
		removed bool
		want    func(error) bool
	}{
		{"hook started", true, func(err error) bool { return errors.Is(err, ErrReleasing) }},
		{"hook failed, started again", false, func(err error) bool { return err != nil && !errors.Is(err, ErrReleasing) }},
		{"hook done", false, func(err error) bool { return err == nil }},
		{"nothing left to release", false, func(err error) bool { return err == nil }},
	}
	for _, s := range steps {
		err := m.release(ctx, a, link, s.removed)
		m.settle(a.IP)
		if !s.want(err) {
			t.Errorf("%s: release = %v", s.name, err)
		}
	}
}
