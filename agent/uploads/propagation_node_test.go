package uploads

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestNodeUploadsPropagation measures, on three fronts, how long an upload
// takes to reach the two others: 1 KB to 1 MB files at 20 uploads/s,
// written on every front in turn as through the VIP, so that each front
// pushes while it receives, then a burst of 10,000 small files. The
// figures are printed; what is asserted is that no file is lost or left
// different on any front.
func TestNodeUploadsPropagation(t *testing.T) {
	fronts := newTestFarm(t, 3)
	for _, f := range fronts {
		f.start(t, fronts)
	}
	allCaughtUp(t, fronts)
	dirs, dsts := []string{fronts[0].dir, fronts[1].dir, fronts[2].dir}, []string{fronts[1].dir, fronts[2].dir}

	latencies, lost := runLoad(t, dirs, len(dirs), "up", 20, 15*time.Second)
	if len(lost) > 0 {
		t.Fatalf("%d uploads not on every front %v after the last: %v", len(lost), lostAfter, lost)
	}
	t.Logf("%d uploads of 1 KB-1 MB at 20/s on every front: propagation to both others p50 %v, p99 %v, max %v",
		len(latencies), pct(latencies, 50), pct(latencies, 99), latencies[len(latencies)-1])
	wrote, everywhere := burst(t, fronts[0].dir, dsts, 10000)
	t.Logf("burst of 10,000 small files: written in %v, on both other fronts %v after the first write",
		wrote.Round(time.Millisecond), everywhere.Round(time.Millisecond))
	converged(t, fronts, nil, "after the load (checksums of every file on every front)")
}

// loadAtRate writes 1 KB to 1 MB new files at rate a second for d, in
// turn into dir below each of the first writers of dirs, and returns,
// sorted, how long each took to be whole in every other of dirs, and the
// files that were not, lostAfter after the last write.
func loadAtRate(t *testing.T, dirs []string, writers int, dir string, rate int, d time.Duration) (latencies []time.Duration, lost []string) {
	t.Helper()
	sizes := []int{1 << 10, 10 << 10, 100 << 10, 1 << 20}
	written := map[string]time.Time{}
	sizeOf, writer := map[string]int{}, map[string]int{}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	poll := time.NewTicker(2 * time.Millisecond)
	defer poll.Stop()
	// others are, per writer, the dirs its files must reach: made once,
	// not at every poll of every file.
	others := make([][]string, writers)
	for w := range others {
		others[w] = slices.Delete(slices.Clone(dirs), w, w+1)
	}
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end) || len(written) > 0; {
		select {
		case <-tick.C:
			if time.Now().After(end) {
				continue
			}
			name := fmt.Sprintf("%s/%05d.bin", dir, i)
			data := make([]byte, sizes[i%len(sizes)])
			_, _ = rand.Read(data)
			write(t, filepath.Join(dirs[i%writers], name), string(data))
			written[name], sizeOf[name], writer[name] = time.Now(), len(data), i%writers
			i++
		case <-poll.C:
			for name, at := range written {
				if arrivedEverywhere(others[writer[name]], name, sizeOf[name]) {
					latencies = append(latencies, time.Since(at))
					delete(written, name)
				}
			}
			if time.Since(end) > lostAfter {
				for name := range written {
					lost = append(lost, filepath.Join(dirs[writer[name]], name))
				}
				slices.Sort(lost)
				written = nil
			}
		}
	}
	slices.Sort(latencies)
	return latencies, lost
}

// lostAfter is how long after the last write loadAtRate waits for files
// still missing on a front.
const lostAfter = 30 * time.Second

// burst writes n small files into src/burst at once, and returns how long
// the writes took and how long until every dst held them all.
func burst(t *testing.T, src string, dsts []string, n int) (wrote, everywhere time.Duration) {
	t.Helper()
	start := time.Now()
	for i := range n {
		write(t, filepath.Join(src, "burst", fmt.Sprintf("%05d.txt", i)), fmt.Sprintf("small file %d", i))
	}
	wrote = time.Since(start)
	eventually(t, 5*time.Minute, "the burst everywhere", func() bool {
		for _, d := range dsts {
			entries, err := os.ReadDir(filepath.Join(d, "burst"))
			// rsync without --temp-dir writes ".name.XXXXXX" beside.
			done := 0
			for _, e := range entries {
				if !strings.HasPrefix(e.Name(), ".") {
					done++
				}
			}
			if err != nil || done < n {
				return false
			}
		}
		return true
	})
	return wrote, time.Since(start)
}

func arrivedEverywhere(dirs []string, name string, size int) bool {
	for _, d := range dirs {
		st, err := os.Stat(filepath.Join(d, name))
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
