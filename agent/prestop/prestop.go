// Package prestop lets the HAProxy that runs beside the agent ask it, before
// HAProxy stops, to hand the node's failover addresses off, through two
// files in the state directory both containers mount. HAProxy's preStop hook
// writes the request and waits for the answer, which says that the node
// holds no address: the agent writes it once it has handed them off while a
// request stands, and when it exits (it holds none then); an agent that
// starts revokes it. A HAProxy that starts withdraws both.
package prestop

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

const (
	// RequestFile, in the state directory, asks the agent to hand off.
	RequestFile = "haproxy-stopping"
	// ReleasedFile, in the state directory, says the node holds no
	// failover address: while a request stands, or while no agent runs.
	ReleasedFile = "haproxy-released"
)

// Request asks the agent of dir to hand the node's addresses off.
func Request(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, RequestFile), nil, 0o600); err != nil {
		return fmt.Errorf("asking the agent to hand off: %w", err)
	}
	return nil
}

// Requested tells whether a request stands in dir.
func Requested(dir string) (bool, error) {
	return exists(filepath.Join(dir, RequestFile))
}

// Answer says, in dir, that the node holds no failover address.
func Answer(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, ReleasedFile), nil, 0o600); err != nil {
		return fmt.Errorf("answering the hand-off request: %w", err)
	}
	return nil
}

// Answered tells whether the agent answered the request in dir.
func Answered(dir string) (bool, error) {
	return exists(filepath.Join(dir, ReleasedFile))
}

// Revoke takes the answer back: an agent starts, and may hold addresses.
func Revoke(dir string) error {
	return remove(filepath.Join(dir, ReleasedFile))
}

// Withdraw removes the request and its answer: HAProxy serves again.
func Withdraw(dir string) error {
	return errors.Join(remove(filepath.Join(dir, RequestFile)), remove(filepath.Join(dir, ReleasedFile)))
}

// Await makes the request in dir and waits, checking every interval, for
// the agent's answer until ctx is done.
func Await(ctx context.Context, dir string, interval time.Duration) error {
	if err := Request(dir); err != nil {
		return err
	}
	err := wait.PollUntilContextCancel(ctx, interval, true, func(context.Context) (bool, error) {
		return Answered(dir)
	})
	if err != nil {
		return fmt.Errorf("waiting for the agent to hand off: %w", err)
	}
	return nil
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
