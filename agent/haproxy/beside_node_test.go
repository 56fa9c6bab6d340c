package haproxy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/webfarm/webfarm/internal/netnstest"
)

// startBeside starts HAProxy's master in ns as its own container would
// (ExecBeside's preparation and command line), not as the Process's child,
// and ends it when t ends.
func startBeside(t *testing.T, ns *netnstest.NS, p *Process) *exec.Cmd {
	t.Helper()
	if err := p.prepareBeside(); err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command("haproxy", p.masterArgs(false)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	})
	return cmd
}

// TestNodeProcessBeside is HAProxy outliving its agent: the agent's Process
// installs, validates and reloads a master it did not start; a new Process
// (the agent's next container) adopts it without a reload; a node that no
// farm selects goes idle; cleanup waits for the master's own end.
func TestNodeProcessBeside(t *testing.T) {
	ns := newNamespace(t)
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy is not installed")
	}
	for _, f := range nodeFronts {
		startWebServer(t, ns, f)
	}
	dir := t.TempDir()
	agent := &Process{Dir: dir, Beside: true}
	ctx := context.Background()

	// The agent first, as when both containers start together: Apply
	// waits for the master.
	applied := make(chan error, 1)
	go func() {
		cfg, err := Render(nodeConfig(agent, 2000))
		if err == nil {
			_, err = agent.Apply(ctx, cfg, Files(nodeConfig(agent, 2000)))
		}
		applied <- err
	}()
	master := startBeside(t, ns, &Process{Dir: dir, Beside: true})
	if err := <-applied; err != nil {
		t.Fatalf("Apply before the master answered: %v", err)
	}
	waitStatus(t, agent, "every server UP", allUp)
	if _, _, err := get(nsClient(ns, false), farmURL); err != nil {
		t.Fatal(err)
	}
	if !apply(t, agent, nodeConfig(agent, 2001)) {
		t.Error("a changed configuration was not reloaded")
	}

	next := &Process{Dir: dir, Beside: true}
	t.Run("the next agent adopts it", func(t *testing.T) {
		if apply(t, next, nodeConfig(next, 2001)) {
			t.Error("the next agent reloaded an identical configuration")
		}
		testReloadUnderLoad(t, ns, next)
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", master.Process.Pid))
		if err != nil || strings.TrimSpace(string(comm)) != "haproxy" || !processAlive(master.Process.Pid) {
			t.Errorf("the master started beside, %d, is gone (%q, %v)", master.Process.Pid, comm, err)
		}
	})
	t.Run("idle when no farm is left", func(t *testing.T) {
		if err := next.StopServing(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, err := get(nsClient(ns, false), farmURL); err == nil {
			t.Error("the farm still answers on an idle HAProxy")
		}
		if !next.Running(ctx) {
			t.Error("the master beside the agent ended: only its container may end it")
		}
	})
	t.Run("cleanup waits for the master's end", func(t *testing.T) {
		short, cancel := context.WithTimeout(ctx, 600*time.Millisecond)
		defer cancel()
		if err := next.Stop(short); err == nil {
			t.Fatal("Stop removed the sockets of a master that still answers")
		}
		if err := master.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := next.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if next.Running(ctx) {
			t.Error("Running after Stop")
		}
	})
}

// TestNodeReadyBeside is the readiness probe of HAProxy's container: not
// ready before its master answers, ready once its worker answers too, and
// not ready again once it is gone.
func TestNodeReadyBeside(t *testing.T) {
	ns := newNamespace(t)
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy is not installed")
	}
	p := &Process{Dir: t.TempDir(), Beside: true}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.Ready(ctx); err == nil {
		t.Fatal("ready before HAProxy started")
	}
	master := startBeside(t, ns, p)
	start := time.Now()
	if err := poll(ctx, "HAProxy ready", func() (bool, error) { return p.Ready(ctx) == nil, nil }); err != nil {
		t.Fatal(err)
	}
	t.Logf("ready %s after the master started", time.Since(start).Round(time.Millisecond))
	if err := master.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, "HAProxy not ready once stopped", func() (bool, error) { return p.Ready(ctx) != nil, nil }); err != nil {
		t.Fatal(err)
	}
}
