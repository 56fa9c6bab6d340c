package uploads

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// TestDropUnshared: at the catch-up of a front away longer than the TTL,
// what no witness holds is dropped when unchanged since the horizon, or
// when it is a version dropped before, which a pull from a peer away as
// long brought back as a new inode; it is counted once.
func TestDropUnshared(t *testing.T) {
	for _, tc := range []struct {
		name string
		// later moves the clock on after the file is written.
		later time.Duration
		// dropped is the version dropped before, if any: the file's
		// own, or (other) one of another size.
		dropped, other bool
		wantGone       bool
		wantCounted    int
	}{
		{name: "changed since the horizon", wantGone: false},
		{name: "unchanged since before the horizon", later: 2 * time.Hour, wantGone: true, wantCounted: 1},
		{name: "the version dropped before, pulled back", dropped: true, wantGone: true},
		{name: "another version than the one dropped", dropped: true, other: true, wantGone: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := clocktesting.NewFakeClock(time.Now())
			s := &Syncer{Module: Module{Name: "m", Path: t.TempDir()}, Rsync: &Rsync{Self: "self"},
				Clock: clock, TombstoneTTL: time.Hour, ClockSkew: time.Minute}
			s.init()
			abs := filepath.Join(s.Module.Path, "y.jpg")
			write(t, abs, "y")
			st, err := os.Lstat(abs)
			if err != nil {
				t.Fatal(err)
			}
			if tc.dropped {
				v := stampOf(st)
				if tc.other {
					v.size++
				}
				s.dropped = map[string]stamp{"y.jpg": v}
			}
			clock.Step(tc.later)
			s.dropUnshared(context.Background(), []string{"y.jpg"})
			_, err = os.Lstat(abs)
			if gone := os.IsNotExist(err); gone != tc.wantGone {
				t.Errorf("y.jpg gone: %v, want %v", gone, tc.wantGone)
			}
			if n := s.Status().Dropped; n != tc.wantCounted {
				t.Errorf("counted %d dropped, want %d", n, tc.wantCounted)
			}
		})
	}
}
