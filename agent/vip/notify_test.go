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

func TestNotifyEnvironment(t *testing.T) {
	out := filepath.Join(t.TempDir(), "env")
	dir := hooksDir(t, map[string]string{"fence": `env | grep ^WEBFARM_ | sort > ` + out + "\necho fenced\n"})
	var runs []NotifyRun
	m := &Manager{HooksDir: dir, NodeName: "db2", Notified: func(r NotifyRun) { runs = append(runs, r) }}
	a := Address{IP: netip.MustParseAddr("10.0.0.50"), FailoverIP: "db/primary", Epoch: 7, PreviousOwner: "db1",
		Notify: &Notify{Backup: "fence", Fault: "fence"}, Fault: true}
	if err := m.notify(context.Background(), notifyState(HookRelease, a), a, "eth0"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	want := "WEBFARM_ADDRESS=10.0.0.50\nWEBFARM_EPOCH=7\nWEBFARM_FAILOVERIP=db/primary\nWEBFARM_INTERFACE=eth0\nWEBFARM_NODE=db2\nWEBFARM_PREVIOUS_OWNER=db1\nWEBFARM_STATE=fault\n"
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
