package uploads

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The uploads at a rate, and the watch for their arrival, run in a
// process of their own, as a web server that takes an upload and a reader
// on another front do. Run inside the test's process, they shared its Go
// runtime with the three fronts' Syncers: the load's own buffers (up to
// 1 MB a file) started a garbage collection about every second of
// make bench-sync (270 in 290 s), and each marked the Syncers' heap too
// (40 to 80 MB with 100,000 files watched on every front), about 10 ms of
// CPU taken from the transfers measured, webfarm's and lsyncd's alike.

// loadVar carries a load's spec to the process that runs it (TestLoad).
const loadVar = "WEBFARM_LOAD"

type loadSpec struct {
	Dirs    []string
	Writers int
	Dir     string
	Rate    int
	For     time.Duration
	// Out is the file the process writes its loadResult into.
	Out string
}

type loadResult struct {
	Latencies []time.Duration
	Lost      []string
}

// runLoad runs loadAtRate(dirs, writers, dir, rate, d) in a process of
// its own, the test binary run again for TestLoad, and returns what it
// returned.
func runLoad(t *testing.T, dirs []string, writers int, dir string, rate int, d time.Duration) (latencies []time.Duration, lost []string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "load.json")
	spec, err := json.Marshal(loadSpec{Dirs: dirs, Writers: writers, Dir: dir, Rate: rate, For: d, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoad$", "-test.count=1",
		"-test.timeout="+(d+lostAfter+time.Minute).String())
	cmd.Env = append(os.Environ(), loadVar+"="+string(spec))
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the load's process: %v\n%s", err, output)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("reading the load's figures: %v", err)
	}
	var r loadResult
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("reading the load's figures %s: %v", out, err)
	}
	return r.Latencies, r.Lost
}

// TestLoad is the process runLoad starts, not a test of its own.
func TestLoad(t *testing.T) {
	encoded := os.Getenv(loadVar)
	if encoded == "" {
		t.Skip("the process of a load that runLoad starts")
	}
	var spec loadSpec
	if err := json.Unmarshal([]byte(encoded), &spec); err != nil {
		t.Fatalf("reading %s: %v", loadVar, err)
	}
	var r loadResult
	r.Latencies, r.Lost = loadAtRate(t, spec.Dirs, spec.Writers, spec.Dir, spec.Rate, spec.For)
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(spec.Out, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
