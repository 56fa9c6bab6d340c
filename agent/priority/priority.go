// Package priority runs the agent ahead of the node's workload.
//
// At the fastest settings the agent's heartbeats and decisions have
// deadlines of a few hundred milliseconds. One that waits behind the node's
// busy processes for longer than the guard is a false fence: the address
// moves for nothing. HA daemons run ahead of the work they protect for that
// reason (corosync with a real-time policy, keepalived's VRRP process with
// a priority of its own). The agent takes a negative nice value rather than
// a real-time policy, so that a runaway agent still cannot lock a node up.
//
// On Linux a nice value belongs to a thread. Every thread of the process
// gets it, with SCHED_RESET_ON_FORK, so that the programs the agent starts
// (HAProxy, rsync, nginx, hooks) run at the normal priority. That flag gives
// the threads the Go runtime starts later the normal priority too, so Keep
// applies the value again to new threads.
package priority

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultNice is the nice value the agent runs at by default: well ahead
// of the usual workload (0), far from the kernel's own threads (-20).
const DefaultNice = -10

// Keep gives every thread of this process nice, now, and again every
// interval to the threads started since, until ctx ends. It returns the
// first attempt's error, such as EPERM without CAP_SYS_NICE; a later
// failure is left to the next round.
func Keep(ctx context.Context, nice int, interval time.Duration) error {
	if err := apply(nice); err != nil {
		return err
	}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = apply(nice)
			}
		}
	}()
	return nil
}

// apply sets nice, with SCHED_RESET_ON_FORK, on every thread of this
// process. A thread that ended meanwhile is no error.
func apply(nice int) error {
	tids, err := Threads()
	if err != nil {
		return err
	}
	for _, tid := range tids {
		attr := unix.SchedAttr{Policy: unix.SCHED_NORMAL, Flags: unix.SCHED_FLAG_RESET_ON_FORK, Nice: int32(nice)}
		if err := unix.SchedSetAttr(tid, &attr, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("setting nice %d on thread %d: %w", nice, tid, err)
		}
	}
	return nil
}

// Threads lists the IDs of this process's threads.
func Threads() ([]int, error) {
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, fmt.Errorf("listing threads: %w", err)
	}
	tids := make([]int, 0, len(entries))
	for _, e := range entries {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// Nice is a thread's nice value.
func Nice(tid int) (int, error) {
	attr, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return 0, fmt.Errorf("reading thread %d's scheduling: %w", tid, err)
	}
	return int(attr.Nice), nil
}
