// Package prestop lets the HAProxy that runs beside the agent ask it, before
// HAProxy stops, to hand the node's failover addresses off, through two
// files in the state directory both containers mount. HAProxy's preStop hook
// writes the request and waits for the answer, which says that the node
// holds no address: the agent writes it once it has handed them off while a
// request stands, and when it exits (it holds none then); an agent that
// starts revokes it. A HAProxy that starts withdraws both.
//
// An agent that dies without exiting (a crash, SIGKILL, the OOM killer)
// leaves no answer. So the agent also marks that it runs, with a shared
// flock on the state directory, which the kernel drops with the process
// however it ends; the hook stops waiting once no agent has run for a
// while, rather than for its whole timeout.
package prestop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
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

// ErrNoAgent: no agent ran on the node for the hook's whole patience, so
// none will hand the addresses off.
var ErrNoAgent = errors.New("no agent runs on the node")

// Running marks in dir that an agent runs, until the returned Closer is
// closed or the process ends. The mark is shared: a new agent that starts
// while the old one stops takes it too.
func Running(dir string) (io.Closer, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("marking the agent running: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("marking the agent running: %w", err)
	}
	return f, nil
}

// AgentRuns tells whether an agent marked in dir that it runs.
func AgentRuns(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, fmt.Errorf("looking for the agent's mark: %w", err)
	}
	defer f.Close() // drops the lock if this took it
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("looking for the agent's mark: %w", err)
	}
	return false, nil
}

// Await makes the request in dir and waits, checking every interval, for
// the agent's answer until ctx is done, or until no agent has run for
// patience in a row (ErrNoAgent): a crashed agent that its container
// restarts within it still answers.
func Await(ctx context.Context, dir string, interval, patience time.Duration) error {
	if err := Request(dir); err != nil {
		return err
	}
	var absentSince time.Time
	err := wait.PollUntilContextCancel(ctx, interval, true, func(context.Context) (bool, error) {
		answered, err := Answered(dir)
		if answered || err != nil {
			return answered, err
		}
		runs, err := AgentRuns(dir)
		switch {
		case err != nil:
			return false, err
		case runs:
			absentSince = time.Time{}
		case absentSince.IsZero():
			absentSince = time.Now()
		case time.Since(absentSince) >= patience:
			return false, ErrNoAgent
		}
		return false, nil
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
