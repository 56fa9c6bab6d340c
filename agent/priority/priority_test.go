package priority

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// threadsAt tells whether every thread of this process runs at nice, and
// lists those that do not.
func threadsAt(t *testing.T, nice int) []string {
	t.Helper()
	tids, err := Threads()
	if err != nil {
		t.Fatal(err)
	}
	var off []string
	for _, tid := range tids {
		got, err := Nice(tid)
		if err == nil && got != nice {
			off = append(off, strconv.Itoa(tid)+" at "+strconv.Itoa(got))
		}
	}
	return off
}

// startThreads makes the Go runtime start n more threads: goroutines
// locked to their threads and blocked in a system call, until release.
// They exit locked, so that their threads end with them and a later call
// starts new ones.
func startThreads(n int) (release func()) {
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			for {
				select {
				case <-stop:
					return
				default:
					_ = unix.Nanosleep(&unix.Timespec{Nsec: int64(time.Millisecond)}, nil)
				}
			}
		}()
	}
	return func() { close(stop); wg.Wait() }
}

func eventually(t *testing.T, what string, cond func() []string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		off := cond()
		if len(off) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: threads off: %v", what, off)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A positive value needs no privilege, so this runs anywhere; it leaves
// this test binary's threads at nice 5.
func TestKeepCoversEveryThread(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := startThreads(4)
	defer release()
	if err := Keep(ctx, 5, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// A thread the runtime starts while Keep goes round may miss a round.
	eventually(t, "every thread", func() []string { return threadsAt(t, 5) })
}

// A negative value is the agent's. Its children run at the normal
// priority, and so do the threads the Go runtime starts later, until Keep
// comes round again (SCHED_RESET_ON_FORK resets only a negative value).
// Needs CAP_SYS_NICE, as the agent does.
func TestNodeNegativeNiceKeptButNotInherited(t *testing.T) {
	if os.Getenv("WEBFARM_NODE_TESTS") == "" {
		t.Skip("set WEBFARM_NODE_TESTS=1 (root) to run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := Keep(ctx, DefaultNice, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every thread", func() []string { return threadsAt(t, DefaultNice) })
	out, err := exec.Command("sh", "-c", "cut -d' ' -f19 /proc/self/stat").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "0" {
		t.Errorf("a child runs at nice %s, want 0", got)
	}
	before, _ := Threads()
	release := startThreads(8)
	defer release()
	eventually(t, "threads started later", func() []string {
		if now, _ := Threads(); len(now) <= len(before) {
			return []string{"no new thread yet"}
		}
		return threadsAt(t, DefaultNice)
	})
}
