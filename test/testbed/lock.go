package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// lockPath is held (flock) by the one testbed that may run on this machine:
// its namespace names are fixed, so a second one would sweep the first
// one's namespaces away. The kernel drops the lock when its holder dies,
// and the next testbed then sweeps what the dead one left.
const lockPath = "/run/lock/webfarm-testbed.lock"

// machineLock is the held lock.
type machineLock struct{ f *os.File }

// acquireLock takes the machine's testbed lock, waiting while another
// testbed holds it, until ctx ends. waiting is told once who holds it.
func acquireLock(ctx context.Context, waiting func(holder string)) (*machineLock, error) {
	if err := os.MkdirAll("/run/lock", 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", lockPath, err)
	}
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", lockPath, err)
		}
		if !told {
			waiting(lockHolder(f))
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("another testbed runs on this machine (%s): %w", lockHolder(f), ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	// Say who holds it, for the next one's message.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(fmt.Sprintf("pid %d: %s\n", os.Getpid(), strings.Join(os.Args, " "))), 0)
	}
	return &machineLock{f: f}, nil
}

func lockHolder(f *os.File) string {
	data := make([]byte, 512)
	n, _ := f.ReadAt(data, 0)
	holder := strings.TrimSpace(string(data[:n]))
	if holder == "" {
		return "holder unknown"
	}
	return holder
}

// release lets the next testbed start.
func (l *machineLock) release() error {
	if l == nil {
		return nil
	}
	return l.f.Close() // closing the descriptor drops the flock
}

// lockHeldElsewhere reports whether a testbed (another process) holds the
// lock now, for `webfarm-testbed sweep`.
func lockHeldElsewhere() (bool, string, error) {
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return false, "", err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true, lockHolder(f), nil
	}
	return false, "", nil
}

// LockMachine takes the machine's testbed lock for another user of the
// machine's resources that must not run beside a testbed (the real cluster
// of test/cluster), waiting while a testbed holds it, until ctx ends.
// waiting is told once who holds it. The returned function releases it.
func LockMachine(ctx context.Context, waiting func(holder string)) (func() error, error) {
	l, err := acquireLock(ctx, waiting)
	if err != nil {
		return nil, err
	}
	return l.release, nil
}
