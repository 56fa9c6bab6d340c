package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/webfarm/webfarm/agent/ownership"
)

func TestMemoryFileSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "ownership.json")
	m := &memoryFile{path: path}
	if err := m.load(); err != nil {
		t.Fatal(err)
	}
	must(t, m.set("default/a", ownership.Memory{Holding: true, HeldEpoch: 4}))
	must(t, m.set("default/b", ownership.Memory{Holding: true, HeldEpoch: 9}))
	must(t, m.set("default/b", ownership.Memory{GaveUp: ownership.Release, GaveUpEpoch: 9}))

	restarted := &memoryFile{path: path}
	must(t, restarted.load())
	if got := restarted.get("default/a"); !got.Holding || got.HeldEpoch != 4 {
		t.Errorf("default/a after restart = %+v, want holding at epoch 4", got)
	}
	if got := restarted.get("default/b"); got.Holding {
		t.Errorf("default/b after restart = %+v, want released", got)
	}
}

func TestMemoryFileWritesOnlyWhatARestartNeeds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ownership.json")
	m := &memoryFile{path: path}
	must(t, m.set("default/a", ownership.Memory{WaitingEpoch: 2}))
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a wait was saved to disk (stat: %v)", err)
	}
}

func TestMemoryFileRefusesGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ownership.json")
	must(t, os.WriteFile(path, []byte("{not json"), 0o600))
	m := &memoryFile{path: path}
	if err := m.load(); err == nil {
		t.Fatal("garbage accepted")
	}
	if m.get("default/a").Holding {
		t.Error("garbage made the node believe it holds an address")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestMemoryFileKeepsTheProofAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ownership.json")
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	m := &memoryFile{path: path}
	must(t, m.set("default/a", ownership.Memory{Holding: true, HeldEpoch: 2}))
	must(t, m.proved("default/a", now.Add(1500*time.Millisecond), 1500*time.Millisecond, 500*time.Millisecond))
	must(t, m.proved("default/a", now.Add(1600*time.Millisecond), 1500*time.Millisecond, 500*time.Millisecond)) // too soon to save

	restarted := &memoryFile{path: path}
	must(t, restarted.load())
	if got := restarted.restoredProof("default/a", now.Add(time.Second), 1500*time.Millisecond); !got.Equal(now.Add(1500 * time.Millisecond)) {
		t.Errorf("restored proof = %v, want the saved +1.5s", got)
	}
	if got := restarted.restoredProof("default/a", now.Add(-time.Hour), 1500*time.Millisecond); !got.IsZero() {
		t.Errorf("a proof far in the future (clock set back) was trusted: %v", got)
	}
	if got := restarted.restoredProof("default/b", now, time.Second); !got.IsZero() {
		t.Errorf("a proof for an address never held: %v", got)
	}
}

// TestMemoryFileRestoresTheProofUnderTheCurrentWindow: a proof saved under
// timings that were cut before the restart lasts only the new window from
// when it started (finding 4: the restarted owner reports the new spec at
// once, and the controller then fences it by the new timings); under raised
// timings it lasts the new, longer window, as the running agent's would.
func TestMemoryFileRestoresTheProofUnderTheCurrentWindow(t *testing.T) {
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	const saved = 9500 * time.Millisecond // deadtime 10s, guard 500ms
	for _, tt := range []struct {
		name   string
		window time.Duration
		want   time.Time
	}{
		{"deadtime cut to 2s", 1500 * time.Millisecond, start.Add(1500 * time.Millisecond)},
		{"unchanged", saved, start.Add(saved)},
		{"deadtime raised to 20s", 19500 * time.Millisecond, start.Add(19500 * time.Millisecond)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ownership.json")
			m := &memoryFile{path: path}
			must(t, m.set("default/a", ownership.Memory{Holding: true, HeldEpoch: 2}))
			must(t, m.proved("default/a", start.Add(saved), saved, 500*time.Millisecond))
			restarted := &memoryFile{path: path}
			must(t, restarted.load())
			if got := restarted.restoredProof("default/a", start.Add(time.Second), tt.window); !got.Equal(tt.want) {
				t.Errorf("restored proof = +%v, want +%v", got.Sub(start), tt.want.Sub(start))
			}
		})
	}
}
