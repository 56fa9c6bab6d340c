package failoversim

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// schedulesEnv sets how many random schedules TestRandomSchedules runs
// (make soak sets ten million).
const schedulesEnv = "WEBFARM_SIM_SCHEDULES"

// replayEnv and kindsEnv replay one schedule with its trace
// (TestReplaySchedule).
const (
	replayEnv = "WEBFARM_SIM_SEED"
	kindsEnv  = "WEBFARM_SIM_KINDS"
)

func schedules(t *testing.T, def int) int {
	t.Helper()
	s := os.Getenv(schedulesEnv)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive count", schedulesEnv, s)
	}
	return n
}

// runSchedules runs n schedules of kinds from seed base on every core and
// returns the failures, at most max of them.
func runSchedules(t *testing.T, base uint64, n int, kinds Kinds, max int) []Outcome {
	t.Helper()
	var next atomic.Uint64
	var mu sync.Mutex
	var failed []Outcome
	var stop atomic.Bool
	var wg sync.WaitGroup
	// A schedule allocates little that lives: collect less often.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	start, cpu := time.Now(), cpuTime()
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				i := next.Add(1) - 1
				if i >= uint64(n) {
					return
				}
				o := RunRandom(base+i, kinds, false)
				if !o.Failed() {
					continue
				}
				mu.Lock()
				failed = append(failed, o)
				if len(failed) >= max {
					stop.Store(true)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	ran := min(next.Load(), uint64(n))
	took, used := time.Since(start), cpuTime()-cpu
	t.Logf("%d schedules of %s in %v on %d cores (%v of CPU): %.0f schedules/s, %.0f per CPU-second; %d failed",
		ran, kinds, took.Round(time.Millisecond), runtime.GOMAXPROCS(0), used.Round(time.Millisecond),
		float64(ran)/took.Seconds(), float64(ran)/used.Seconds(), len(failed))
	return failed
}

// cpuTime is the CPU time this process used so far: on a shared machine
// it tells the simulation's cost apart from the wait for a core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportFailures(t *testing.T, kinds Kinds, failed []Outcome) {
	t.Helper()
	for _, o := range failed {
		t.Errorf("seed %d (%s): %s%s\n  replay: %s=%d %s=%s go test ./internal/failoversim -run TestReplaySchedule -v",
			o.Seed, o.Summary, o.Safety, o.Liveness, replayEnv, o.Seed, kindsEnv, kinds)
	}
}

// TestRandomSchedules runs every kind of fault.
func TestRandomSchedules(t *testing.T) {
	n := schedules(t, 100_000)
	failed := runSchedules(t, 1, n, AllKinds, 20)
	reportFailures(t, AllKinds, failed)
}

// knownHoles are the faults that reach the known findings today:
//   - finding 2, a peer proof that outlives the controller's fence: a mute
//     owner (one-way cuts); an owner whose claims are lost more than the
//     heartbeats it hears (loss bursts, steady loss: the new owner counts
//     deadtime from the last claim it received, not the last one made;
//     seeds 47270 and 84438 of partitions,controller-restarts,drains
//     before steady loss was a kind of its own); a paused owner that, on SIGCONT,
//     reads queued heartbeats as fresh (pauses; seeds 36705, 53878, 79889 and
//     more of partitions,pauses,controller-restarts,loss-bursts,drains);
//     An owner whose status is stale also sends its claims only to the
//     candidates it knows: a front undrained since never hears them, and
//     waits one keepalive when it is made owner (drains; seeds 1592, 84438
//     of partitions,controller-restarts,drains).
//   - finding 4 (timing edits) and finding 7 (Lease meddling);
//   - the two restart holes (crashes): a restarted agent forgets the epoch it
//     fenced at, or, without its memory, the address its last process left.
const knownHoles = OneWayCuts | TimingEdits | LeaseMeddling | Crashes | Pauses | LossBursts | SteadyLoss | Drains

// TestRandomSchedulesWithoutKnownHoles runs every other fault: symmetric
// partitions, isolated fronts and API outages, and controller restarts,
// with delays, reordering, duplication and clock drift throughout, but no
// loss. Once the holes are fixed,
// TestRandomSchedules replaces it.
func TestRandomSchedulesWithoutKnownHoles(t *testing.T) {
	n := schedules(t, 100_000)
	kinds := AllKinds &^ knownHoles
	var unknown []Outcome
	for _, o := range runSchedules(t, 1, n, kinds, 20) {
		if why, ok := knownSeeds[o.Seed]; ok {
			t.Logf("seed %d fails as known: %s (%s%s)", o.Seed, why, o.Safety, o.Liveness)
			continue
		}
		unknown = append(unknown, o)
	}
	reportFailures(t, kinds, unknown)
}

// knownSeeds are the schedules of TestRandomSchedulesWithoutKnownHoles
// that reach a known finding through the faults it keeps, one in about
// 100,000; make soak finds more of them.
var knownSeeds = map[uint64]string{
	40241: "new (acked peer proofs): the controller fences an owner proved through its peers, by its Lease, " +
		"to an ownerless epoch, then names a front at the next epoch as released by the previous owner \"\": " +
		"the new owner waives its promise and listens to nobody while the old one's peer proof runs",
}

// TestReplaySchedule runs the one schedule WEBFARM_SIM_SEED names and logs
// its trace.
func TestReplaySchedule(t *testing.T) {
	s := os.Getenv(replayEnv)
	if s == "" {
		t.Skipf("set %s (and %s) to replay a schedule", replayEnv, kindsEnv)
	}
	seed, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", replayEnv, s, err)
	}
	kinds, err := ParseKinds(os.Getenv(kindsEnv))
	if err != nil {
		t.Fatal(err)
	}
	o := RunRandom(seed, kinds, true)
	t.Logf("seed %d, %s:\n%s", seed, o.Summary, o.Trace)
	if o.Failed() {
		t.Errorf("%s%s", o.Safety, o.Liveness)
	}
}
