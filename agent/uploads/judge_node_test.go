package uploads

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestNodeUploadsEveryVersionSetAsideIsWeighed: what a peer's pushes
// replace on a front is set aside until the front judges the path, a
// quiet period after the last push. The best of the versions set aside,
// the path as it is and its tombstone stays, whichever push set it aside,
// and nothing set aside is left behind: a peer that pushes a path twice
// before the first push is judged does not overwrite the version the
// first set aside, and a version that loses to a deletion does not take
// with it the newer one it replaced. The daemon and the client are rsync;
// front2 runs no Syncer: its pushes are the test's, made with its Rsync,
// so that they all land before front1 judges.
func TestNodeUploadsEveryVersionSetAsideIsWeighed(t *testing.T) {
	// Long enough that two pushes land within it on a loaded machine.
	const quiet = 5 * time.Second
	fronts := newTestFarm(t, 2)
	f1, f2 := fronts[0], fronts[1]
	f1.quiet = quiet
	f1.start(t, fronts)
	allCaughtUp(t, fronts[:1])
	base := time.Now().Add(-time.Minute).Truncate(time.Second)
	type version struct {
		content string
		at      time.Time
	}
	for _, tc := range []struct {
		name string
		// here is front1's version; deleted, when set, when front1 saw
		// an earlier version deleted; pushes, front2's.
		here    version
		deleted time.Time
		pushes  []version
		want    string
	}{
		{
			name:   "front1's newest, replaced by two older ones",
			here:   version{"front1, newest", base.Add(2 * time.Second)},
			pushes: []version{{"front2, oldest", base}, {"front2, edited", base.Add(time.Second)}},
			want:   "front1, newest",
		},
		{
			name:   "the second push the newest",
			here:   version{"front1, oldest", base},
			pushes: []version{{"front2, older", base.Add(time.Second)}, {"front2, newest", base.Add(2 * time.Second)}},
			want:   "front2, newest",
		},
		{
			// The pushed version loses to the deletion, the one it
			// replaced wins over both.
			name:    "front1's upload after a deletion, replaced by a version from before it",
			here:    version{"front1, uploaded again", base.Add(2 * time.Second)},
			deleted: base.Add(time.Second),
			pushes:  []version{{"front2, missed the deletion", base}},
			want:    "front1, uploaded again",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Base(t.Name()) + ".jpg"
			if !tc.deleted.IsZero() {
				writeAt(t, filepath.Join(f1.dir, tombstoneName(path)), "front1\n", tc.deleted)
			}
			writeAt(t, filepath.Join(f1.dir, path), tc.here.content, tc.here.at)
			eventually(t, 4*quiet, "front1's version settled", func() bool {
				f1.syncer.mu.Lock()
				defer f1.syncer.mu.Unlock()
				return f1.syncer.settledAs[path].mtimeNs == tc.here.at.UnixNano()
			})
			start := time.Now()
			for _, v := range tc.pushes {
				src := t.TempDir()
				writeAt(t, filepath.Join(src, path), v.content, v.at)
				if err := f2.rsync().Push(context.Background(), src, f1.addr, f1.module().Name, []string{path}); err != nil {
					t.Fatal(err)
				}
			}
			took := time.Since(start)
			t.Logf("front2's %d pushes took %v", len(tc.pushes), took.Round(time.Millisecond))
			if took >= quiet {
				t.Fatalf("front2's pushes took %v, longer than front1's quiet period (%v): front1 may have judged the first alone; the test shows nothing", took, quiet)
			}
			var got string
			var left []string
			if eventuallyQuiet(t, 4*quiet, func() bool {
				data, _ := os.ReadFile(filepath.Join(f1.dir, path))
				left, _ = filepath.Glob(filepath.Join(f1.dir, replacedDir, f2.name, path+"*"))
				got = string(data)
				return got == tc.want && len(left) == 0
			}) < 0 {
				t.Fatalf("front1 holds %q, want %q; versions still set aside: %v", got, tc.want, left)
			}
		})
	}
}
