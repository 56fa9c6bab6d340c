package uploads

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestNodeUploadsPropagation measures, on three fronts, how long an upload
// takes to reach the two others: 1 KB to 1 MB files at 20 uploads/s, then
// a burst of 10,000 small files. The figures are printed; what is asserted
// is that no file is lost or left different on any front.
func TestNodeUploadsPropagation(t *testing.T) {
	fronts := newTestFarm(t, 3)
	for _, f := range fronts {
		f.start(t, fronts)
	}
	allCaughtUp(t, fronts)
	f1, peers := fronts[0], fronts[1:]

	const rate, duration = 20, 15 * time.Second
	sizes := []int{1 << 10, 10 << 10, 100 << 10, 1 << 20}
	written := map[string]time.Time{}
	sizeOf := map[string]int{}
	var latencies []time.Duration
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	end := time.Now().Add(duration)
	for i := 0; time.Now().Before(end) || len(written) > 0; {
		select {
		case <-tick.C:
			if time.Now().After(end) {
				continue
			}
			name := fmt.Sprintf("up/%05d.bin", i)
			data := make([]byte, sizes[i%len(sizes)])
			_, _ = rand.Read(data)
			write(t, filepath.Join(f1.dir, name), string(data))
			written[name], sizeOf[name] = time.Now(), len(data)
			i++
		case <-poll.C:
			for name, at := range written {
				if arrivedEverywhere(peers, name, sizeOf[name]) {
					latencies = append(latencies, time.Since(at))
					delete(written, name)
				}
			}
			if time.Since(end) > time.Minute {
				t.Fatalf("%d uploads still missing a minute after the last", len(written))
			}
		}
	}
	slices.Sort(latencies)
	t.Logf("%d uploads of 1 KB-1 MB at %d/s: propagation to both other fronts p50 %v, p99 %v, max %v",
		len(latencies), rate, pct(latencies, 50), pct(latencies, 99), latencies[len(latencies)-1])

	start := time.Now()
	for i := range 10000 {
		write(t, filepath.Join(f1.dir, "burst", fmt.Sprintf("%05d.txt", i)), fmt.Sprintf("small file %d", i))
	}
	wrote := time.Since(start)
	eventually(t, 5*time.Minute, "the burst on every front", func() bool {
		for _, p := range peers {
			entries, err := os.ReadDir(filepath.Join(p.dir, "burst"))
			if err != nil || len(entries) < 10000 {
				return false
			}
		}
		return true
	})
	t.Logf("burst of 10,000 small files: written in %v, on both other fronts %v after the first write",
		wrote.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	converged(t, fronts, nil, "after the load (checksums of every file on every front)")
}

func arrivedEverywhere(fronts []*testFront, name string, size int) bool {
	for _, f := range fronts {
		st, err := os.Stat(filepath.Join(f.dir, name))
		if err != nil || st.Size() != int64(size) {
			return false
		}
	}
	return true
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100].Round(time.Millisecond)
}
