package testbed

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace bounds a graceful stop (SIGTERM) before the process is killed:
// longer than the agent's default shutdown grace (10s), within which it
// hands its addresses off.
const stopGrace = 20 * time.Second

// process is a program the testbed runs, in the root namespace or inside
// one of its namespaces (through `ip netns exec`, which execs in place, so
// the pid is the program's). Its output goes to a log file that outlives
// it, appended to across restarts.
type process struct {
	name string
	ns   string // empty: the root namespace
	argv []string
	log  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // how the last run ended
}

// Start starts the process; it fails if it already runs.
func (p *process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s: already running (pid %d)", p.name, p.cmd.Process.Pid)
	}
	out, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: opening log: %w", p.name, err)
	}
	argv := p.argv
	if p.ns != "" {
		argv = append([]string{"ip", "netns", "exec", p.ns}, argv...)
	}
	fmt.Fprintf(out, "--- %s: %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: Ctrl-C in a terminal reaches the testbed only,
	// which then stops everything in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("%s: starting %s: %w", p.name, argv[0], err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	go func() {
		err := cmd.Wait()
		out.Close()
		p.mu.Lock()
		p.err = err
		if p.cmd == cmd {
			p.cmd = nil
		}
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

// Running reports whether the process runs.
func (p *process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// Pid is the process id, 0 when it does not run.
func (p *process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Stop sends SIGTERM and waits for the process to exit, killing it after
// stopGrace. Stopping a process that does not run does nothing.
func (p *process) Stop() error {
	return p.signalAndWait(syscall.SIGTERM, stopGrace)
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *process) Kill() error {
	return p.signalAndWait(syscall.SIGKILL, stopGrace)
}

func (p *process) signalAndWait(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: sending %v: %w", p.name, sig, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(grace):
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("%s: did not stop within %s after %v; killed", p.name, grace, sig)
}

// Signal sends sig to the process without waiting (SIGSTOP, SIGCONT...).
func (p *process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("%s: not running", p.name)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: sending %v: %w", p.name, sig, err)
	}
	return nil
}

// Exited is closed when the current run ends (nil when not running).
func (p *process) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	return p.exited
}

// LogSize is the length of the process's log now, for LogSince.
func (p *process) LogSize() int64 {
	st, err := os.Stat(p.log)
	if err != nil {
		return 0
	}
	return st.Size()
}

// LogSince returns the first n lines written at or after offset that
// contain match (every line when match is empty).
func (p *process) LogSince(offset int64, match string, n int) string {
	data, err := os.ReadFile(p.log)
	if err != nil || offset > int64(len(data)) {
		return ""
	}
	var out []string
	for _, line := range strings.Split(string(data[offset:]), "\n") {
		if len(out) == n {
			break
		}
		if strings.Contains(line, match) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// LogTail returns the last n lines of the process's log, for error messages.
func (p *process) LogTail(n int) string {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
