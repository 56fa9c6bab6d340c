package testbed

import (
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// stallProbe measures how late the machine runs a thread that is ahead of
// the load: a thread at the agents' nice value sleeps 1 ms again and again
// and records how much longer than that each sleep took. A long
// oversleep there means that every process waited (the virtual machine's
// CPUs were taken away, or the kernel was busy), not that a daemon lost
// its turn to the CPU hogs: a soak's false fences read differently then.
type stallProbe struct {
	mu      sync.Mutex
	longest time.Duration
	over    int // oversleeps beyond stallThreshold
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// stallThreshold is an oversleep worth counting: a third of the fastest
// deadtime.
const stallThreshold = 100 * time.Millisecond

// startStallProbe starts the probe on a thread of its own at nice.
func startStallProbe(nice int) *stallProbe {
	p := &stallProbe{stop: make(chan struct{}), done: make(chan struct{})}
	go p.run(nice)
	return p
}

func (p *stallProbe) run(nice int) {
	defer close(p.done)
	runtime.LockOSThread()
	// The thread is the probe's alone: it is never handed back to the
	// runtime (no UnlockOSThread), so the nice value dies with it.
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice)
	sleep := unix.NsecToTimespec(int64(time.Millisecond))
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		start := time.Now()
		// A real sleep of this thread, not a Go timer: the wake-up is the
		// kernel's, at this thread's priority.
		_ = unix.Nanosleep(&sleep, nil)
		p.record(time.Since(start) - time.Millisecond)
	}
}

func (p *stallProbe) record(late time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.longest = max(p.longest, late)
	if late > stallThreshold {
		p.over++
	}
}

// Stop ends the probe and returns the longest oversleep and how many
// exceeded stallThreshold; stopping twice is harmless.
func (p *stallProbe) Stop() (longest time.Duration, over int) {
	p.once.Do(func() { close(p.stop) })
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.longest, p.over
}
