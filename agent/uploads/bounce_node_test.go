package uploads

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestNodeUploadsReceivedNotSentBack: what front1 writes reaches front2
// and front3, and neither sends any of it on: not a file, not the
// directory a file arrived in, not an empty directory, not one of a burst
// of files in a new directory. Each front counts the paths it pushed.
func TestNodeUploadsReceivedNotSentBack(t *testing.T) {
	fronts := newTestFarm(t, 3)
	for _, f := range fronts {
		f.start(t, fronts)
	}
	allCaughtUp(t, fronts)
	noErrors(t, fronts)
	f1, receivers := fronts[0], fronts[1:]
	for _, tc := range []struct {
		name  string
		write func(t *testing.T)
	}{
		{"a file at the top", func(t *testing.T) { write(t, filepath.Join(f1.dir, "top.jpg"), "top") }},
		{"a file in a new directory", func(t *testing.T) { write(t, filepath.Join(f1.dir, "single/0.txt"), "single/0.txt") }},
		{"a file in nested new directories", func(t *testing.T) { write(t, filepath.Join(f1.dir, "2026/12/02/a.png"), "nested") }},
		{"a file in a directory the peers hold", func(t *testing.T) { write(t, filepath.Join(f1.dir, "single/1.txt"), "single/1.txt") }},
		{"an empty directory", func(t *testing.T) {
			if err := os.Mkdir(filepath.Join(f1.dir, "empty"), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{"a burst of 2,000 files in a new directory", func(t *testing.T) {
			for i := range 2000 {
				write(t, filepath.Join(f1.dir, "burst", fmt.Sprintf("%04d.txt", i)), fmt.Sprintf("small file %d", i))
			}
		}},
		{"a deletion", func(t *testing.T) {
			if err := os.RemoveAll(filepath.Join(f1.dir, "2026")); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := map[string]int{}
			for _, f := range receivers {
				before[f.name] = f.syncer.Status().Pushed
			}
			tc.write(t)
			converged(t, fronts, nil, tc.name)
			idle(t, fronts)
			// The receivers' watchers have seen every write by now; give
			// them a few quiet periods to (wrongly) send them on.
			consistently(t, 10*DefaultQuiet, func() {
				for _, f := range receivers {
					if st := f.syncer.Status(); st.Pushed != before[f.name] {
						t.Fatalf("%s sent %d paths on (conflicts %d, last error %q)", f.name, st.Pushed-before[f.name], st.Conflicts, st.LastError)
					}
				}
			})
		})
	}
}
