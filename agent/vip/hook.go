package vip

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-logr/logr"

	"github.com/webfarm/webfarm/agent/command"
)

// HookAction says why the hook runs.
type HookAction string

// Hook actions, passed as the hook's first argument.
const (
	// HookTakeover runs after the address was added and announced.
	HookTakeover HookAction = "takeover"
	// HookRelease runs after the address was removed.
	HookRelease HookAction = "release"
)

// DefaultHookTimeout bounds a hook run when Hook.Timeout is zero.
const DefaultHookTimeout = 10 * time.Second

// Hook is an executable the agent runs when it takes over or releases an
// address, for providers that move failover IPs with an API call rather than
// by ARP. Its path comes from an agent flag, never from the API, so that no
// user can make the agent run a program of their choice.
//
// It is run as
//
//	<path> takeover|release <address> <interface> <failoverip namespace/name> <epoch>
//
// with the agent's environment, its process group killed after Timeout. It
// must be idempotent: the agent may run it again for the same epoch after a
// restart or a failed run. A non-zero exit is an error.
type Hook struct {
	// Path is the absolute path of the executable.
	Path string
	// Timeout bounds one run; DefaultHookTimeout when zero.
	Timeout time.Duration
}

// NewHook checks that path names an executable regular file by an absolute
// path, as the agent's flag parsing should before it starts.
func NewHook(path string, timeout time.Duration) (*Hook, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("hook %q: path must be absolute", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("hook: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("hook %q: not an executable file", path)
	}
	return &Hook{Path: path, Timeout: timeout}, nil
}

// Run runs the hook for a, on the interface named iface, and logs its output.
func (h *Hook) Run(ctx context.Context, action HookAction, a Address, iface string) error {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	args := []string{string(action), a.IP.String(), iface, a.FailoverIP, strconv.FormatInt(a.Epoch, 10)}
	out, err := command.Run(ctx, h.Path, args, nil, timeout)
	logr.FromContextOrDiscard(ctx).Info("Ran failover hook", "hook", h.Path, "args", args, "output", out)
	if err != nil {
		return fmt.Errorf("running %s hook %s: %w", action, h.Path, err)
	}
	return nil
}
