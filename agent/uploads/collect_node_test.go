package uploads

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestNodeUploadsTombstonesCollected: with deletions remembered for a few
// seconds, every front forgets a deletion that every front applied; a
// front left out of the others' peers for a while, running on, is sent the
// deletions it missed when it is back; and a front away for longer than the
// TTL comes back without the files deleted meanwhile (their tombstones gone
// everywhere), while what it wrote alone just before it came back reaches
// every front.
func TestNodeUploadsTombstonesCollected(t *testing.T) {
	// Long enough that front3's catch-up, slow on a loaded machine, comes
	// well within it after w.jpg is written.
	const ttl = 12 * time.Second
	fronts := startFarmWithTTL(t, 3, ttl)
	f1, f2, f3 := fronts[0], fronts[1], fronts[2]

	t.Run("collected once every front applied it", func(t *testing.T) {
		write(t, filepath.Join(f1.dir, "x.pdf"), "x")
		converged(t, fronts, nil, "x created")
		if err := os.Remove(filepath.Join(f1.dir, "x.pdf")); err != nil {
			t.Fatal(err)
		}
		converged(t, fronts, map[string]string{}, "x deleted")
		tomb := filepath.Join(deletedDir, "x.pdf")
		if _, err := os.Lstat(filepath.Join(f1.dir, tomb)); err != nil {
			t.Fatalf("front1 wrote no tombstone: %v", err)
		}
		d := eventually(t, 4*ttl, "the tombstone collected on every front", func() bool {
			for _, f := range fronts {
				if _, err := os.Lstat(filepath.Join(f.dir, tomb)); err == nil {
					return false
				}
			}
			return true
		})
		t.Logf("tombstone collected on every front %v after the deletion converged (TTL %v)", d.Round(time.Millisecond), ttl)
		converged(t, fronts, map[string]string{}, "after the collection")
	})

	t.Run("a front left out and back gets the deletions it missed", func(t *testing.T) {
		write(t, filepath.Join(f1.dir, "v.jpg"), "v")
		converged(t, fronts, nil, "v created")
		// front3 runs on, but the others count it Down for a while.
		setPeers(fronts[:2])
		if err := os.Remove(filepath.Join(f1.dir, "v.jpg")); err != nil {
			t.Fatal(err)
		}
		converged(t, fronts[:2], map[string]string{}, "v deleted while front3 is left out")
		if _, err := os.Lstat(filepath.Join(f3.dir, "v.jpg")); err != nil {
			t.Fatalf("front3 lost v.jpg while left out: the test proves nothing: %v", err)
		}
		setPeers(fronts)
		converged(t, fronts, map[string]string{}, "front3 back in the peers, without a restart")
	})

	t.Run("a front away longer than the TTL", func(t *testing.T) {
		for _, name := range []string{"y.jpg", "z.jpg"} {
			write(t, filepath.Join(f1.dir, name), name)
		}
		converged(t, fronts, nil, "before the outage")
		f3.stop()
		// The agents leave a Down front out of their peers, and its
		// queue with it.
		setPeers(fronts[:2])
		if err := os.Remove(filepath.Join(f1.dir, "y.jpg")); err != nil {
			t.Fatal(err)
		}
		converged(t, fronts[:2], nil, "y deleted while front3 is down")
		tomb := filepath.Join(deletedDir, "y.jpg")
		eventually(t, 4*ttl, "y's tombstone collected on front1 and front2", func() bool {
			_, err1 := os.Lstat(filepath.Join(f1.dir, tomb))
			_, err2 := os.Lstat(filepath.Join(f2.dir, tomb))
			return os.IsNotExist(err1) && os.IsNotExist(err2)
		})
		if _, err := os.Lstat(filepath.Join(f3.dir, "y.jpg")); err != nil {
			t.Fatalf("front3 lost y.jpg while down: the test proves nothing: %v", err)
		}
		// Written on front3 alone, after every collected deletion.
		write(t, filepath.Join(f3.dir, "w.jpg"), "written on front3 while away")

		f3.start(t, fronts)
		setPeers(fronts)
		allCaughtUp(t, fronts)
		want := map[string]string{"z.jpg": digest("z.jpg"), "w.jpg": digest("written on front3 while away")}
		converged(t, fronts, want, "after front3 came back")
		consistently(t, 10*DefaultQuiet, func() {
			for _, f := range fronts {
				if _, err := os.Lstat(filepath.Join(f.dir, "y.jpg")); err == nil {
					t.Fatalf("%s: y.jpg was resurrected", f.name)
				}
			}
		})
		if n := f3.syncer.Status().Dropped; n != 1 {
			t.Errorf("front3 dropped %d files, want 1 (y.jpg)", n)
		}
	})
}

// TestNodeUploadsFrontsAwayTogether: two fronts away longer than the TTL
// come back at once, both holding a file deleted meanwhile whose tombstone
// is collected. Neither keeps it because the other holds it: a peer away
// as long is no witness of what was deleted (only front1, in step all
// along, is), so the file is not brought back to front1.
func TestNodeUploadsFrontsAwayTogether(t *testing.T) {
	const ttl = 12 * time.Second
	fronts := startFarmWithTTL(t, 3, ttl)
	f1, f2, f3 := fronts[0], fronts[1], fronts[2]
	for _, name := range []string{"y.jpg", "z.jpg"} {
		write(t, filepath.Join(f1.dir, name), name)
	}
	converged(t, fronts, nil, "before the outage")
	f2.stop()
	f3.stop()
	setPeers(fronts[:1])
	if err := os.Remove(filepath.Join(f1.dir, "y.jpg")); err != nil {
		t.Fatal(err)
	}
	tomb := filepath.Join(f1.dir, deletedDir, "y.jpg")
	eventually(t, 4*ttl, "y's tombstone written on front1", func() bool {
		_, err := os.Lstat(tomb)
		return err == nil
	})
	eventually(t, 4*ttl, "y's tombstone collected on front1", func() bool {
		_, err := os.Lstat(tomb)
		return os.IsNotExist(err)
	})

	// Both daemons up before either Syncer catches up: each finds the
	// other answering, with y.jpg.
	f2.serve(t, fronts)
	f3.serve(t, fronts)
	f2.run(t)
	f3.run(t)
	setPeers(fronts)
	allCaughtUp(t, fronts)
	converged(t, fronts, map[string]string{"z.jpg": digest("z.jpg")}, "after front2 and front3 came back together")
	consistently(t, 10*DefaultQuiet, func() {
		for _, f := range fronts {
			if _, err := os.Lstat(filepath.Join(f.dir, "y.jpg")); err == nil {
				t.Fatalf("%s: y.jpg was resurrected", f.name)
			}
		}
	})
	if n := f2.syncer.Status().Dropped + f3.syncer.Status().Dropped; n != 2 {
		t.Errorf("front2 and front3 dropped %d files in all, want 2 (y.jpg on each)", n)
	}
}

// startFarmWithTTL starts n fronts that forget deletions after ttl, and
// waits until they are caught up and each has recorded being in step. A
// front that goes away before its first record counts as new when it is
// back, and keeps and sends what it holds: the first probes often find a
// peer's daemon not up yet, and the next come probeRetries later.
func startFarmWithTTL(t *testing.T, n int, ttl time.Duration) []*testFront {
	t.Helper()
	fronts := newTestFarm(t, n)
	for _, f := range fronts {
		f.ttl = ttl
		f.start(t, fronts)
	}
	allCaughtUp(t, fronts)
	eventually(t, 20*time.Second, "every front recorded in step", func() bool {
		for _, f := range fronts {
			if _, err := os.Stat(f.syncer.inStepFile()); err != nil {
				return false
			}
		}
		return true
	})
	return fronts
}

// setPeers makes every front of up sync with the others of up.
func setPeers(up []*testFront) {
	for _, f := range up {
		var ps []Peer
		for _, p := range up {
			if p != f {
				ps = append(ps, Peer{Name: p.name, Addr: p.addr})
			}
		}
		f.syncer.SetPeers(ps)
	}
}
