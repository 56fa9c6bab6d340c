package uploads

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
)

// Runner makes the command that runs a program on the node; tests point
// it into a network namespace of their own.
type Runner func(ctx context.Context, name string, args ...string) *exec.Cmd

// command is bin (rsync by default) with args, made by run
// (exec.CommandContext by default).
func command(ctx context.Context, run Runner, bin string, args ...string) *exec.Cmd {
	if bin == "" {
		bin = "rsync"
	}
	if run == nil {
		run = exec.CommandContext
	}
	return run(ctx, bin, args...)
}

// Daemon supervises the front's rsync daemon. rsyncd reads its
// configuration again at every connection, so a change of peers or modules
// needs no restart; a new address or port does.
type Daemon struct {
	// Binary is rsync; "rsync" from PATH when empty.
	Binary string
	// Command runs it; exec.CommandContext when nil.
	Command Runner

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	running DaemonConfig
}

// Apply writes cfg and the farm's password and starts the daemon, or
// restarts it when its address or port changed.
func (d *Daemon) Apply(cfg DaemonConfig, password string) error {
	text, err := cfg.Render()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", cfg.StateDir, err)
	}
	if err := writeFile(cfg.secretsPath(), []byte(AuthUser+":"+password+"\n"), 0o600); err != nil {
		return err
	}
	if err := writeFile(cfg.configPath(), text, 0o600); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.alive() && d.running.Address == cfg.Address && d.running.Port == cfg.Port {
		return nil
	}
	d.stopLocked()
	return d.startLocked(cfg)
}

func (d *Daemon) startLocked(cfg DaemonConfig) error {
	// Not bound to a caller's context: the daemon lives until Stop.
	cmd := command(context.Background(), d.Command, d.Binary, "--daemon", "--no-detach", "--config="+cfg.configPath())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting rsync daemon: %w", err)
	}
	d.cmd, d.running, d.exited = cmd, cfg, make(chan struct{})
	go func(exited chan struct{}) { _ = cmd.Wait(); close(exited) }(d.exited)
	return nil
}

func (d *Daemon) alive() bool {
	if d.cmd == nil {
		return false
	}
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// Stop kills the daemon and the connections it serves.
func (d *Daemon) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked()
}

func (d *Daemon) stopLocked() {
	if d.cmd == nil {
		return
	}
	// The whole process group: rsyncd forks one child per connection.
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	<-d.exited
	d.cmd = nil
}

// writeFile replaces path atomically, so that rsyncd never reads half a
// configuration.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), mode)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
