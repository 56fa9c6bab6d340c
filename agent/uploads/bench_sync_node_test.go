package uploads

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchSyncVar enables TestNodeSyncBench (make bench-sync).
const BenchSyncVar = "WEBFARM_BENCH_SYNC"

// idleFiles are the files already in every front's directories, for
// webfarm and for lsyncd, when the bench starts: the idle CPU is measured
// with them (and the bench's own) watched.
const idleFiles = 100_000

// lsyncdModule is where lsyncd pushes on every front: a module of the same
// daemon, beside the Syncer's directory.
func lsyncdModule(f *testFront) Module {
	m := f.module()
	m.Name, m.Path = "lsyncd", filepath.Join(filepath.Dir(f.dir), "lsyncd")
	return m
}

// lsyncdConf pushes src to every peer's lsyncd module with Debian's
// lsyncd, as its default.rsync does, with no delay (its default is 15 s)
// and TCP_NODELAY as webfarm's pushes have (without it, a one-file push
// waits for delayed ACKs: 175 ms, not 50), so that its latency is the
// best it can be. It deletes nothing, as lsyncd run on every front must
// not: its start-up sync would delete what the others wrote meanwhile
// (the bench deletes nothing).
func lsyncdConf(src, state, password string, peers []*testFront) string {
	var b strings.Builder
	fmt.Fprintf(&b, "settings { nodaemon = true, logfile = %q, statusFile = %q, insist = true }\n",
		filepath.Join(state, "lsyncd.log"), filepath.Join(state, "lsyncd.status"))
	for _, p := range peers {
		fmt.Fprintf(&b, "sync { default.rsync, source = %q, target = %q, delay = 0, delete = false,\n", src,
			fmt.Sprintf("rsync://%s@%s:8873/lsyncd/", AuthUser, p.addr))
		fmt.Fprintf(&b, "  rsync = { password_file = %q, archive = false, links = true, times = true, perms = true,\n    _extra = { \"--sockopts=TCP_NODELAY\" } } }\n", password)
	}
	return b.String()
}

// startLsyncd runs lsyncd in f's namespace until the test ends.
func startLsyncd(t *testing.T, f *testFront, peers []*testFront) *exec.Cmd {
	t.Helper()
	src := lsyncdModule(f).Path
	conf := filepath.Join(f.state, "lsyncd.lua")
	if err := os.WriteFile(conf, []byte(lsyncdConf(src, f.state, filepath.Join(f.state, "password"), peers)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := runner(f.ns)(context.Background(), "lsyncd", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting lsyncd: %v", err)
	}
	t.Cleanup(func() { stopLsyncd(cmd) })
	// Its start-up sends its whole tree to every target: measured while
	// that runs, the first figures (webfarm's) shared the cores with it.
	start, log := time.Now(), filepath.Join(f.state, "lsyncd.log")
	eventually(t, 10*time.Minute, "lsyncd's start-up transfers", func() bool {
		text, _ := os.ReadFile(log)
		return strings.Count(string(text), " finished.\n") >= len(peers)
	})
	t.Logf("lsyncd's start-up transfers (every file to every target) ended in %v", time.Since(start).Round(time.Millisecond))
	return cmd
}

// stopLsyncd stops an lsyncd that startLsyncd started.
func stopLsyncd(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
}

// rateRounds of rateRound each, per system, make the 20/s figures: 900
// uploads, so that the p99 is the ninth slowest, not the third.
const (
	rateRounds = 3
	rateRound  = 15 * time.Second
)

// TestNodeSyncBench runs the same load through webfarm's Syncers and
// through lsyncd on the same three namespaces, one after the other, and
// prints their figures side by side: a single change, 1 KB-1 MB files at
// 20 uploads/s written on one front, then spread over the three (as the
// VIP spreads them; lsyncd then runs on every front), a burst of 10,000
// files, and the CPU each uses idle with what they watch: 100,000 files in
// every directory before the load, and what the load wrote. Every file is
// checked on every front after the load.
func TestNodeSyncBench(t *testing.T) {
	if os.Getenv(BenchSyncVar) != "1" {
		t.Skipf("benchmark: set %s=1 (make bench-sync)", BenchSyncVar)
	}
	fronts := newTestFarm(t, 3)
	for _, f := range fronts {
		f.extra = []Module{lsyncdModule(f)}
		// The daemon writes as the module's owner.
		if err := os.MkdirAll(lsyncdModule(f).Path, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(lsyncdModule(f).Path, testUID, testGID); err != nil {
			t.Fatal(err)
		}
	}
	seedIdleFiles(t, fronts)
	start := time.Now()
	for _, f := range fronts {
		f.start(t, fronts)
	}
	allCaughtUpWithin(t, fronts, 10*time.Minute)
	t.Logf("every front caught up with %d files in %v", idleFiles, time.Since(start).Round(time.Millisecond))
	lsyncd := startLsyncd(t, fronts[0], fronts[1:])
	systems := []struct {
		name string
		// dirs are the fronts' directories, front1's first.
		dirs []string
	}{
		{"webfarm", []string{fronts[0].dir, fronts[1].dir, fronts[2].dir}},
		{"lsyncd", []string{lsyncdModule(fronts[0]).Path, lsyncdModule(fronts[1]).Path, lsyncdModule(fronts[2]).Path}},
	}
	singles, bursts := make([]time.Duration, len(systems)), make([]time.Duration, len(systems))
	var names []string
	for _, s := range systems {
		names = append(names, s.name)
	}
	for i, s := range systems {
		singles[i] = singleChange(t, s.dirs[0], s.dirs[1:])
	}
	oneWriter, lateOne := ratedRounds(t, names, "up", func(i int, dir string) ([]time.Duration, []string) {
		lat, lost := runLoad(t, systems[i].dirs, 1, dir, 20, rateRound)
		return lat, relativeTo(t, systems[i].dirs, lost)
	})
	for i, s := range systems {
		_, bursts[i] = burst(t, s.dirs[0], s.dirs[1:], 10000)
	}
	// Uploads through the VIP land on every front: lsyncd then runs on
	// each, and sends on what the others sent it too.
	var twoWay []*exec.Cmd
	for i, f := range fronts[1:] {
		others := append(slices.Clone(fronts[:i+1]), fronts[i+2:]...)
		twoWay = append(twoWay, startLsyncd(t, f, others))
	}
	allWriters, lateAll := ratedRounds(t, names, "all", func(i int, dir string) ([]time.Duration, []string) {
		ownedDirs(t, systems[i].dirs, dir)
		lat, lost := runLoad(t, systems[i].dirs, len(systems[i].dirs), dir, 20, rateRound)
		return lat, relativeTo(t, systems[i].dirs, lost)
	})
	for _, cmd := range twoWay {
		stopLsyncd(cmd)
	}
	// webfarm must lose nothing; lsyncd's losses are a figure of its.
	// A file still missing lostAfter after its round has no latency: it
	// counts here even if it arrived later.
	differ := make([][]string, len(systems))
	for i, s := range systems {
		differ[i] = slices.Concat(differing(t, s.dirs), lateOne[i], lateAll[i])
		slices.Sort(differ[i])
		differ[i] = slices.Compact(differ[i])
	}
	if len(differ[0]) > 0 {
		t.Errorf("webfarm: %d paths late or not the same on every front after the load: %v", len(differ[0]), differ[0])
	}
	self, lsy := idleCPU(t, lsyncd.Process.Pid, 20*time.Second)
	idle := []string{fmt.Sprintf("%.2f%% (3 Syncers, one process)", self), fmt.Sprintf("%.2f%% (lsyncd on front1)", lsy)}
	rows := [][]string{{"", "single change", "20/s p50", "20/s p99", "20/s max", "20/s on all p50", "20/s on all p99", "10,000-file burst", "idle CPU", "lost, late or different"}}
	for i, s := range systems {
		one, all := oneWriter[i], allWriters[i]
		rows = append(rows, []string{s.name, singles[i].String(),
			pct(one, 50).String(), pct(one, 99).String(), one[len(one)-1].Round(time.Millisecond).String(),
			pct(all, 50).String(), pct(all, 99).String(), bursts[i].Round(time.Millisecond).String(), idle[i],
			strconv.Itoa(len(differ[i]))})
		if len(differ[i]) > 0 {
			t.Logf("%s: late or not the same on every front after the load: %v", s.name, differ[i])
		}
	}
	t.Logf("load average %s; %d files watched per front\n%s", loadAverage(), len(tree(t, fronts[0].dir)), table(rows))
}

// ratedRounds runs rateRounds rounds of load for each of the systems,
// taking turns, so that a change of the machine's load (it is shared)
// weighs on them alike; it returns each system's latencies, sorted, and
// the files its rounds lost. Each round writes below a directory of its
// own, named after name.
func ratedRounds(t *testing.T, systems []string, name string, load func(system int, dir string) ([]time.Duration, []string)) (latencies [][]time.Duration, lost [][]string) {
	t.Helper()
	latencies, lost = make([][]time.Duration, len(systems)), make([][]string, len(systems))
	for r := range rateRounds {
		for i, system := range systems {
			lat, late := load(i, fmt.Sprintf("%s%d", name, r))
			latencies[i], lost[i] = append(latencies[i], lat...), append(lost[i], late...)
			slices.Sort(lat)
			t.Logf("%s, round %d: p50 %v, p99 %v, max %v", system, r, pct(lat, 50), pct(lat, 99), pct(lat, 100))
		}
	}
	for _, lat := range latencies {
		slices.Sort(lat)
	}
	return latencies, lost
}

// relativeTo gives each of paths, below one of dirs, relative to it.
func relativeTo(t *testing.T, dirs, paths []string) []string {
	t.Helper()
	var out []string
	for _, p := range paths {
		i := slices.IndexFunc(dirs, func(d string) bool {
			rel, err := filepath.Rel(d, p)
			return err == nil && filepath.IsLocal(rel)
		})
		if i < 0 {
			t.Errorf("%s is below none of %v", p, dirs)
			continue
		}
		rel, _ := filepath.Rel(dirs[i], p)
		out = append(out, rel)
	}
	return out
}

// ownedDirs makes dir below each of dirs, owned by their owner, as a web
// server's upload directory is: the daemons write as that owner, and
// lsyncd, unlike webfarm, gives nothing written on a front its owner (a
// directory the test made as root on front1 refused every other front's
// files).
func ownedDirs(t *testing.T, dirs []string, dir string) {
	t.Helper()
	for _, d := range dirs {
		path := filepath.Join(d, dir)
		if err := os.Mkdir(path, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, testUID, testGID); err != nil {
			t.Fatal(err)
		}
	}
}

// differing are the paths not the same on every one of dirs: missing on
// one, or with other content.
func differing(t *testing.T, dirs []string) []string {
	t.Helper()
	trees := make([]map[string]string, len(dirs))
	for i, d := range dirs {
		trees[i] = tree(t, d)
	}
	differ := map[string]bool{}
	for _, tr := range trees {
		for path, digest := range tr {
			for _, other := range trees {
				if other[path] != digest {
					differ[path] = true
				}
			}
		}
	}
	return sortedKeys(differ)
}

// seedIdleFiles writes idleFiles small files into front1's directory, in
// 100 directories, and links them into lsyncd's and the other fronts':
// the fronts start in step. Hard links, because copying 500,000 files
// took minutes on a loaded machine; nothing writes to these files, and a
// file rsync replaces gets an inode of its own (it renames into place).
func seedIdleFiles(t *testing.T, fronts []*testFront) {
	t.Helper()
	start := time.Now()
	src := filepath.Join(fronts[0].dir, "idle")
	for i := range idleFiles {
		path := filepath.Join(src, fmt.Sprintf("d%03d", i%100), fmt.Sprintf("f%06d.txt", i))
		if i < 100 {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(path, []byte(path), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, f := range fronts {
		dsts := []string{lsyncdModule(f).Path}
		if i > 0 {
			dsts = append(dsts, f.dir)
		}
		for _, dst := range dsts {
			// cp into a directory that does not exist yet makes it the
			// copy: the files landed one level up, unlike front1's, and
			// the fronts started with twice idleFiles to exchange.
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("cp", "-al", src, dst+"/").CombinedOutput(); err != nil {
				t.Fatalf("copying the idle files to %s: %v: %s", dst, err, out)
			}
		}
	}
	t.Logf("%d files in every front's directories (webfarm's and lsyncd's) in %v", idleFiles, time.Since(start).Round(time.Millisecond))
}

// singleChange writes one file at a time, each once the last is
// everywhere, and returns the median time until it is in every dst.
func singleChange(t *testing.T, src string, dsts []string) time.Duration {
	t.Helper()
	var took []time.Duration
	for i := range 5 {
		name := fmt.Sprintf("single/%d.txt", i)
		write(t, filepath.Join(src, name), name)
		took = append(took, arrivalWithin(t, time.Minute, func() bool { return arrivedEverywhere(dsts, name, len(name)) }))
	}
	slices.Sort(took)
	return took[len(took)/2].Round(time.Millisecond)
}

// arrivalWithin polls cond every millisecond, not at eventually's 20 ms,
// which made every single change a multiple of 20 ms, and returns how long
// it took to hold.
func arrivalWithin(t *testing.T, within time.Duration, cond func() bool) time.Duration {
	t.Helper()
	d := pollUntil(within, time.Millisecond, cond)
	if d < 0 {
		t.Fatalf("not arrived after %v", within)
	}
	return d
}

// idleCPU is the CPU this process (the three Syncers) and lsyncd used
// over d with nothing to sync, in percent of one core.
func idleCPU(t *testing.T, lsyncdPid int, d time.Duration) (self, lsyncd float64) {
	t.Helper()
	// The bench's own checksums of every front's tree left garbage: its
	// collection, and the runtime returning that memory to the system
	// bit by bit, would be counted as the Syncers' idle CPU. An agent
	// does not read its trees whole at rest.
	runtime.GC()
	debug.FreeOSMemory()
	s0, l0 := cpuTicks(t, os.Getpid()), cpuTicks(t, lsyncdPid)
	start := time.Now()
	// A window of d with nothing written: the measurement itself wakes
	// this process once.
	<-time.NewTimer(d).C
	wall := time.Since(start).Seconds()
	const hz = 100 // USER_HZ
	return float64(cpuTicks(t, os.Getpid())-s0) / hz / wall * 100, float64(cpuTicks(t, lsyncdPid)-l0) / hz / wall * 100
}

// cpuTicks is a process's user and system time, in clock ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command's closing parenthesis: utime and
	// stime are the 12th and 13th.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

func loadAverage() string {
	data, _ := os.ReadFile("/proc/loadavg")
	return strings.Join(strings.Fields(string(data))[:3], " ")
}

// table aligns rows in columns.
func table(rows [][]string) string {
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, c := range r {
			fmt.Fprintf(&b, "%-*s  ", width[i], c)
		}
		b.WriteString("\n")
	}
	return b.String()
}
