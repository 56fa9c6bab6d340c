package vip

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// hooksDir writes scripts into a temporary hooks directory.
func hooksDir(t *testing.T, scripts map[string]string) string {
	dir := t.TempDir()
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestNotifyEnvironment: a hook gets the documented WEBFARM_ variables on
// top of the agent's environment, which it inherits: the chart passes
// WEBFARM_MARIADB_DEFAULTS to the MariaDB hooks that way.
func TestNotifyEnvironment(t *testing.T) {
	// The caller's own WEBFARM_ variables (WEBFARM_NODE_TESTS=1...) are no
	// part of what is checked.
	withoutWebfarmEnv(t)
	t.Setenv("WEBFARM_MARIADB_DEFAULTS", "/etc/webfarm/mariadb.cnf")
	out := filepath.Join(t.TempDir(), "env")
	dir := hooksDir(t, map[string]string{"fence": `env | grep ^WEBFARM_ | sort > ` + out + "\necho fenced\n"})
	var runs []NotifyRun
	m := &Manager{HooksDir: dir, NodeName: "db2", Notified: func(r NotifyRun) { runs = append(runs, r) }}
	a := Address{IP: netip.MustParseAddr("10.0.0.50"), FailoverIP: "db/primary", Epoch: 7, PreviousOwner: "db1", LastOwner: "db1", LastOwnerEpoch: 6,
		Notify: &Notify{Backup: "fence", Fault: "fence"}, Fault: true}
	if err := m.notify(context.Background(), notifyState(HookRelease, a), a, "eth0"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	want := "WEBFARM_ADDRESS=10.0.0.50\nWEBFARM_EPOCH=7\nWEBFARM_FAILOVERIP=db/primary\nWEBFARM_INTERFACE=eth0\nWEBFARM_LAST_OWNER=db1\nWEBFARM_LAST_OWNER_EPOCH=6\nWEBFARM_MARIADB_DEFAULTS=/etc/webfarm/mariadb.cnf\nWEBFARM_NODE=db2\nWEBFARM_PREVIOUS_OWNER=db1\nWEBFARM_PROMOTED_EPOCH=\nWEBFARM_STATE=fault\n"
	if string(got) != want {
		t.Errorf("environment:\n%s\nwant:\n%s", got, want)
	}
	if len(runs) != 2 || !runs[0].Running || runs[1].Running || runs[1].Err != nil || strings.TrimSpace(runs[1].Output) != "fenced" || runs[1].State != NotifyFault {
		t.Errorf("runs = %+v, want running, then a fault run that succeeded", runs)
	}
	// No hook for master: nothing runs, nothing is reported.
	if err := m.notify(context.Background(), NotifyMaster, a, "eth0"); err != nil || len(runs) != 2 {
		t.Errorf("master without a hook: %v, %d runs", err, len(runs))
	}
}

// withoutWebfarmEnv removes the WEBFARM_ variables from the test's
// environment until it ends.
func withoutWebfarmEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "WEBFARM_") {
			t.Setenv(name, "") // restored at the end of the test
			if err := os.Unsetenv(name); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestNotifyPromotedEpoch: the hooks learn the epoch of the last master
// hook that succeeded for their address; a failed one does not count.
func TestNotifyPromotedEpoch(t *testing.T) {
	out := filepath.Join(t.TempDir(), "promoted")
	dir := hooksDir(t, map[string]string{
		"promote": `echo "$WEBFARM_STATE $WEBFARM_EPOCH [$WEBFARM_PROMOTED_EPOCH]" >> ` + out + `
[ "$WEBFARM_EPOCH" != 9 ]`,
	})
	m := &Manager{HooksDir: dir}
	a := Address{IP: netip.MustParseAddr("10.0.0.50"), Notify: &Notify{Master: "promote", Fault: "promote"}}
	other := Address{IP: netip.MustParseAddr("10.0.0.51"), Epoch: 3, Notify: a.Notify}
	for _, step := range []struct {
		state NotifyState
		a     Address
		epoch int64
	}{
		{NotifyMaster, a, 7},     // never promoted here: empty
		{NotifyFault, a, 7},      // promoted at 7
		{NotifyMaster, a, 7},     // promoted at 7: the same epoch after a fence
		{NotifyMaster, a, 9},     // fails: does not count
		{NotifyMaster, a, 10},    // still 7
		{NotifyMaster, other, 3}, // per address
	} {
		step.a.Epoch = step.epoch
		_ = m.notify(context.Background(), step.state, step.a, "eth0")
	}
	got, _ := os.ReadFile(out)
	want := "master 7 []\nfault 7 [7]\nmaster 7 [7]\nmaster 9 [7]\nmaster 10 [7]\nmaster 3 []\n"
	if string(got) != want {
		t.Errorf("hooks saw:\n%s\nwant:\n%s", got, want)
	}
}

func TestNotifyRefusesPaths(t *testing.T) {
	m := &Manager{HooksDir: "/etc/webfarm/hooks"}
	for _, name := range []string{"../../bin/sh", "/bin/sh", "..", "."} {
		a := Address{Notify: &Notify{Master: name}}
		if p, _ := m.notifyPath(NotifyMaster, a); p != "" {
			t.Errorf("hook %q resolved to %q: only a file name of the hooks directory may run", name, p)
		}
	}
}

// TestPromoteFirst: the master hook runs before the address is added, once
// per epoch until it succeeds; a failure is reported and run again.
func TestPromoteFirst(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "fail-once")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := hooksDir(t, map[string]string{"promote": `if [ -e ` + marker + ` ]; then rm ` + marker + `; echo "not yet"; exit 1; fi; echo promoted`})
	var mu sync.Mutex
	var runs []NotifyRun
	m := &Manager{HooksDir: dir, Notified: func(r NotifyRun) { mu.Lock(); runs = append(runs, r); mu.Unlock() }}
	a := Address{IP: netip.MustParseAddr("10.0.0.50"), FailoverIP: "db/primary", Epoch: 3, Notify: &Notify{Master: "promote", MasterFirst: true}}
	if !m.masterFirst(a) {
		t.Fatal("masterFirst = false")
	}
	ctx := context.Background()
	if err := m.promote(ctx, a); !errors.Is(err, ErrPromoting) {
		t.Fatalf("first promote = %v, want ErrPromoting", err)
	}
	var failed error
	waitFor(t, "the failed run", func() bool {
		err := m.promote(ctx, a)
		if err != nil && !errors.Is(err, ErrPromoting) {
			failed = err
		}
		return failed != nil
	})
	t.Logf("failed run: %v", failed)
	waitFor(t, "the second run to succeed", func() bool { return m.promote(ctx, a) == nil })
	if !m.promoted(a) {
		t.Error("promoted = false after success")
	}
	next := a
	next.Epoch = 4
	if m.promoted(next) {
		t.Error("a promotion counts for its own epoch only")
	}
	mu.Lock()
	defer mu.Unlock()
	var ended []string
	for _, r := range runs {
		if !r.Running {
			ended = append(ended, strings.TrimSpace(r.Output))
		}
	}
	if strings.Join(ended, ",") != "not yet,promoted" {
		t.Errorf("ended runs = %q, want a failure then a success", ended)
	}
}

// TestPromoteAcrossEpochs: a new epoch of the same owner while its master
// hook runs (the owner renewed, as under a loaded API server every few
// seconds) does not kill the hook half-way: it runs on once and counts for
// the new epoch.
func TestPromoteAcrossEpochs(t *testing.T) {
	dir := t.TempDir()
	started, release := filepath.Join(dir, "started"), filepath.Join(dir, "release")
	hooks := hooksDir(t, map[string]string{"promote": `echo "$WEBFARM_EPOCH" >> ` + started + `
while [ ! -e ` + release + ` ]; do sleep 0.02; done
echo promoted`})
	var mu sync.Mutex
	var runs []NotifyRun
	m := &Manager{HooksDir: hooks, Notified: func(r NotifyRun) { mu.Lock(); runs = append(runs, r); mu.Unlock() }}
	a := Address{IP: netip.MustParseAddr("10.0.0.50"), FailoverIP: "db/primary", Epoch: 3, Notify: &Notify{Master: "promote", MasterFirst: true}}
	ctx := context.Background()
	if err := m.promote(ctx, a); !errors.Is(err, ErrPromoting) {
		t.Fatalf("promote at epoch 3 = %v, want ErrPromoting", err)
	}
	waitFor(t, "the master hook to start", func() bool { _, err := os.Stat(started); return err == nil })
	renewed := a
	renewed.Epoch = 4
	if err := m.promote(ctx, renewed); !errors.Is(err, ErrPromoting) {
		t.Fatalf("promote at epoch 4 = %v, want ErrPromoting", err)
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the promotion to count for epoch 4", func() bool { return m.promote(ctx, renewed) == nil })
	if !m.promoted(renewed) {
		t.Error("promoted at epoch 4 = false")
	}
	b, _ := os.ReadFile(started)
	if got := strings.Fields(string(b)); len(got) != 1 {
		t.Errorf("master hook started at epochs %v, want once: not killed and run again", got)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, r := range runs {
		if !r.Running && r.Err != nil {
			t.Errorf("a master hook run failed: %v", r.Err)
		}
	}
}
