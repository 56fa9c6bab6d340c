package haproxy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"syscall"
)

// ExecBeside becomes the master of a HAProxy that runs beside the agent (a
// Process with Beside on the same Dir): it gives Dir the idle configuration
// unless Dir holds one already (the last one the agent installed, when
// HAProxy's container restarts), then replaces the calling process with
// `haproxy -W` in the foreground, so that the container's init signals
// HAProxy itself. It returns only on error.
func (p *Process) ExecBeside() error {
	if err := checkRuntimeSocket(p.RuntimeSocket()); err != nil {
		return fmt.Errorf("haproxy dir %q: %w", p.Dir, err)
	}
	if err := p.prepareBeside(); err != nil {
		return err
	}
	bin, err := exec.LookPath(p.binary())
	if err != nil {
		return err
	}
	return syscall.Exec(bin, append([]string{bin}, p.masterArgs(false)...), os.Environ())
}

// prepareBeside makes Dir ready for a master started beside the agent. The
// idle configuration is linked into place, never renamed over it: an agent
// that installs its own at the same moment keeps it.
func (p *Process) prepareBeside() error {
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return err
	}
	// A new master checks its servers afresh, as start does.
	if err := os.Remove(p.path(ServerStateFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if _, err := os.Stat(p.path(ConfigFile)); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	tmp := p.path(ConfigFile + ".idle")
	if err := os.WriteFile(tmp, p.idleConfig(), 0o600); err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, p.path(ConfigFile)); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("installing the idle configuration: %w", err)
	}
	return nil
}

// idleConfig is a configuration with no proxy, which HAProxy in
// master-worker mode runs: the runtime socket only. A HAProxy beside the
// agent runs it before the agent's first configuration, and after the last
// farm left the node, since the agent may not end it.
func (p *Process) idleConfig() []byte {
	return fmt.Appendf(nil, "# Written by webfarm-agent: no farm is served here.\n"+
		"global\n    master-worker\n    stats socket %s mode 600 level admin expose-fd listeners\n", p.RuntimeSocket())
}

// StopServing ends HAProxy's service on a node that no farm selects any
// more. The agent's own HAProxy ends (Stop); one beside the agent loads the
// idle configuration instead, which closes every listener.
func (p *Process) StopServing(ctx context.Context) error {
	if !p.Beside {
		return p.Stop(ctx)
	}
	_, err := p.Apply(ctx, p.idleConfig(), nil)
	return err
}

// awaitBeside waits for the master beside the agent to answer and has it
// reload, whatever it read when it started: Dir now holds what it must run.
func (p *Process) awaitBeside(ctx context.Context) error {
	waitCtx, cancel := withDefaultTimeout(ctx, startTimeout)
	defer cancel()
	err := poll(waitCtx, "the master of the haproxy beside the agent on "+p.path(MasterSocketFile), func() (bool, error) {
		return p.Running(waitCtx), nil
	})
	if err != nil {
		return err
	}
	return p.reload(ctx)
}

// awaitEnd waits for a master beside the agent to stop answering.
func (p *Process) awaitEnd(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx, stopTimeout)
	defer cancel()
	err := poll(ctx, "the haproxy beside the agent to end (its container ends it)", func() (bool, error) {
		// Asked without the wait's deadline: a question cut short by it
		// would pass for a master that is gone.
		return !p.Running(context.WithoutCancel(ctx)), nil
	})
	if err != nil {
		return fmt.Errorf("haproxy still answers on %s: %w", p.path(MasterSocketFile), err)
	}
	return nil
}

// Ready tells whether HAProxy serves, for the readiness probe of its
// container beside the agent: its master answers with a worker, and that
// worker answers on the runtime socket.
func (p *Process) Ready(ctx context.Context) error {
	procs, err := p.showProc(ctx)
	if err != nil {
		return fmt.Errorf("master socket %s: %w", p.path(MasterSocketFile), err)
	}
	if len(procs.workers) == 0 {
		return fmt.Errorf("haproxy's master has no worker")
	}
	if _, err := command(ctx, p.RuntimeSocket(), "show info"); err != nil {
		return fmt.Errorf("runtime socket %s: %w", p.RuntimeSocket(), err)
	}
	return nil
}
