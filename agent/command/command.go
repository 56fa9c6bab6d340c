// Package command runs the node's own programs for the agent — failover
// hooks, notify hooks, exec health checks — each in its own process group,
// killed with everything it started at its deadline.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// maxOutput bounds the output kept of one run: the end says most.
const maxOutput = 4096

// Run runs path with args and env added to the agent's environment, and
// returns its combined output (its last maxOutput bytes). It kills the
// process group at timeout; a non-zero exit or the timeout is an error.
func Run(ctx context.Context, path string, args, env []string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	if len(env) > 0 {
		cmd.Env = append(cmd.Environ(), env...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so that a timeout also kills what it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild that escaped the group may hold the output pipe open.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	output := out.Bytes()
	if len(output) > maxOutput {
		output = output[len(output)-maxOutput:]
	}
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s: %w", timeout, ctx.Err())
	}
	return string(output), err
}
