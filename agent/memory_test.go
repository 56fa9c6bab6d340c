package agent

import (
	"os"
	"path/filepath"
	"slices"
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
	m.waitSaves()
	must(t, m.proved("default/a", now.Add(1600*time.Millisecond), 1500*time.Millisecond, 500*time.Millisecond)) // too soon to save
	m.waitSaves()

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

func TestMemoryFileOrphans(t *testing.T) {
	a1 := heldObject{UID: "uid-1", Address: "192.0.2.1"}
	a2 := heldObject{UID: "uid-2", Address: "192.0.2.1"}
	b := heldObject{UID: "uid-b", Address: "192.0.2.2", Interface: "eth1"}
	for _, tc := range []struct {
		name string
		live map[string]heldObject
		want []string
	}{
		{"same objects", map[string]heldObject{"ns/a": a1, "ns/b": b}, nil},
		{"a recreated under the same name", map[string]heldObject{"ns/a": a2, "ns/b": b}, []string{"ns/a"}},
		{"b deleted", map[string]heldObject{"ns/a": a1}, []string{"ns/b"}},
		{"b's interface changed", map[string]heldObject{"ns/a": a1, "ns/b": {UID: "uid-b", Address: "192.0.2.2"}}, []string{"ns/b"}},
		{"everything gone", nil, []string{"ns/a", "ns/b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &memoryFile{path: filepath.Join(t.TempDir(), "ownership.json")}
			must(t, m.bind(map[string]heldObject{"ns/a": a1, "ns/b": b}))
			must(t, m.set("ns/a", ownership.Memory{Holding: true, HeldEpoch: 3}))
			must(t, m.set("ns/b", ownership.Memory{GaveUp: ownership.Fence, GaveUpEpoch: 7}))
			var got []string
			for _, o := range m.orphans(tc.live) {
				got = append(got, o.key)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("orphans = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMemoryFileRecreatedObjectStartsClean: the memory of a FailoverIP that
// was deleted and recreated under the same name is an orphan until forgotten;
// then the new object starts with no epoch of the old one, and a restart
// does not bring the old one back.
func TestMemoryFileRecreatedObjectStartsClean(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ownership.json")
	old := heldObject{UID: "uid-old", Address: "192.0.2.1"}
	recreated := heldObject{UID: "uid-new", Address: "192.0.2.1"}
	m := &memoryFile{path: path}
	must(t, m.load())
	must(t, m.bind(map[string]heldObject{"ns/a": old}))
	must(t, m.set("ns/a", ownership.Memory{Holding: true, HeldEpoch: 9}))
	must(t, m.set("ns/a", ownership.Memory{GaveUp: ownership.Release, GaveUpEpoch: 9}))
	must(t, m.set("ns/a", ownership.Memory{Holding: true, HeldEpoch: 12}))

	live := map[string]heldObject{"ns/a": recreated}
	must(t, m.bind(live)) // must not rebind the old memory to the new object
	orphans := m.orphans(live)
	if len(orphans) != 1 || orphans[0].object != old || orphans[0].memory.HeldEpoch != 12 {
		t.Fatalf("orphans = %+v, want the old object held at epoch 12", orphans)
	}
	must(t, m.forget("ns/a", recreated)) // not the orphan's object: a no-op
	if !m.get("ns/a").Holding {
		t.Fatal("forgetting another object dropped the memory")
	}
	must(t, m.forget("ns/a", old))
	must(t, m.bind(live))
	if got := m.get("ns/a"); got != (ownership.Memory{}) {
		t.Errorf("memory of the recreated object = %+v, want none", got)
	}
	restarted := &memoryFile{path: path}
	must(t, restarted.load())
	if got := restarted.held(); len(got) != 0 {
		t.Errorf("after a restart the node believes it holds %+v", got)
	}
}

// TestMemoryFileSavesTheObject: a held address is saved with the UID, the
// address and the interface of its object, so that a restarted agent can
// remove it once the object is gone.
func TestMemoryFileSavesTheObject(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ownership.json")
	obj := heldObject{UID: "uid-1", Address: "2001:db8::1", Interface: "eth1"}
	m := &memoryFile{path: path}
	must(t, m.bind(map[string]heldObject{"ns/a": obj}))
	must(t, m.set("ns/a", ownership.Memory{Holding: true, HeldEpoch: 4}))

	restarted := &memoryFile{path: path}
	must(t, restarted.load())
	orphans := restarted.orphans(nil)
	if len(orphans) != 1 || orphans[0].object != obj || !orphans[0].memory.Holding {
		t.Fatalf("after a restart with the object gone: orphans %+v, want ns/a held for %+v", orphans, obj)
	}
	addr, err := heldAddressOf(orphans[0])
	if err != nil || addr.IP.String() != "2001:db8::1" || addr.Interface != "eth1" || addr.Epoch != 4 {
		t.Errorf("address to remove = %+v, %v", addr, err)
	}
}

// TestMemoryFileReadsTheOldFormat: a file saved by an agent that did not
// save UIDs stays readable. Its entry belongs to the live object of the same
// name, which it is then saved with; with no such object it is an orphan
// whose address is unknown.
func TestMemoryFileReadsTheOldFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ownership.json")
	must(t, os.WriteFile(path, []byte(`{"ns/a":{"epoch":5,"provenUntil":"2026-11-25T12:00:00Z"},"ns/gone":{"epoch":2}}`), 0o600))
	m := &memoryFile{path: path}
	must(t, m.load())
	if got := m.get("ns/a"); !got.Holding || got.HeldEpoch != 5 {
		t.Fatalf("ns/a from the old file = %+v, want held at epoch 5", got)
	}
	live := map[string]heldObject{"ns/a": {UID: "uid-a", Address: "192.0.2.5"}}
	orphans := m.orphans(live)
	if len(orphans) != 1 || orphans[0].key != "ns/gone" || orphans[0].object.Address != "" {
		t.Fatalf("orphans = %+v, want only ns/gone, of unknown address", orphans)
	}
	must(t, m.bind(live))
	restarted := &memoryFile{path: path}
	must(t, restarted.load())
	if got := restarted.orphans(map[string]heldObject{"ns/a": {UID: "uid-other", Address: "192.0.2.5"}}); len(got) != 2 {
		t.Errorf("once bound, ns/a was not saved with its UID: orphans of a recreated ns/a = %+v", got)
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
			m.waitSaves()
			restarted := &memoryFile{path: path}
			must(t, restarted.load())
			if got := restarted.restoredProof("default/a", start.Add(time.Second), tt.window); !got.Equal(tt.want) {
				t.Errorf("restored proof = +%v, want +%v", got.Sub(start), tt.want.Sub(start))
			}
		})
	}
}

// decideAt is what an owner that renewed its Lease just now decides, with
// mem, at epoch: the rules that keep a given-up epoch given up.
func decideAt(mem ownership.Memory, epoch int64) ownership.Decision {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	return ownership.Decide(ownership.Input{
		Node: "n1", Address: "192.0.2.1", Memory: mem, Now: now, LastAPIProof: now,
		Status: ownership.Status{Owner: "n1", Epoch: epoch, PreviousOwner: "n2", PreviousOwnerReleased: true, Candidates: []string{"n1"}},
		Timing: ownership.Timing{Keepalive: 500 * time.Millisecond, Deadtime: 2 * time.Second, Guard: 500 * time.Millisecond},
	})
}

// TestMemoryFileKeepsWhatItGaveUp: the epoch at which the agent released or
// fenced an address survives a restart, since the controller hands the
// address over on that report alone: the restarted agent holds again only
// at a later epoch (finding of internal/failoversim,
// TestScenarioRestartForgetsAFence).
func TestMemoryFileKeepsWhatItGaveUp(t *testing.T) {
	for _, action := range []ownership.Action{ownership.Release, ownership.Fence} {
		t.Run(action.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ownership.json")
			m := &memoryFile{path: path}
			must(t, m.load())
			must(t, m.bind(map[string]heldObject{"ns/a": {UID: "uid-a", Address: "192.0.2.1"}}))
			now := time.Now()
			held := ownership.Memory{}.After(ownership.Decision{Action: ownership.Hold, Epoch: 4}, now)
			must(t, m.set("ns/a", held))
			must(t, m.set("ns/a", held.After(ownership.Decision{Action: action, Epoch: 4, Reason: "lost its proofs"}, now)))

			restarted := &memoryFile{path: path}
			must(t, restarted.load())
			mem := restarted.get("ns/a")
			if mem.Holding || mem.GaveUp != action || mem.GaveUpEpoch != 4 {
				t.Fatalf("after a restart ns/a = %+v, want %s at epoch 4 remembered", mem, action)
			}
			if d := decideAt(mem, 4); d.Announce() {
				t.Errorf("at the epoch given up the restarted agent decides %s", d)
			}
			if d := decideAt(mem, 5); !d.Announce() {
				t.Errorf("at a new epoch the restarted agent decides %s, want Hold", d)
			}
			if got := restarted.orphans(map[string]heldObject{"ns/a": {UID: "uid-other", Address: "192.0.2.1"}}); len(got) != 1 {
				t.Errorf("the given-up epoch was saved without its object: orphans of a recreated ns/a = %+v", got)
			}
		})
	}
}

// TestMemoryFileWithoutRecordGivesUpTheCurrentEpochs: an agent that finds
// no memory, or one it cannot read, cannot tell which epochs its previous
// process gave up: it gives up the current one of every FailoverIP, saved
// at once, and holds again at a later epoch only (finding of
// internal/failoversim, TestScenarioRestartForgetsAFence without state).
func TestMemoryFileWithoutRecordGivesUpTheCurrentEpochs(t *testing.T) {
	for _, tc := range []struct {
		name string
		file []byte
	}{
		{"no file", nil},
		{"unreadable file", []byte("{not json")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ownership.json")
			if tc.file != nil {
				must(t, os.WriteFile(path, tc.file, 0o600))
			}
			m := &memoryFile{path: path}
			_ = m.load() // the unreadable file's error is the point
			must(t, m.giveUpUnknownPast(map[string]int64{"ns/a": 7, "ns/new": 0}))
			if d := decideAt(m.get("ns/a"), 7); d.Announce() {
				t.Errorf("at the epoch of its first view the agent decides %s", d)
			}
			if d := decideAt(m.get("ns/a"), 8); !d.Announce() {
				t.Errorf("at a later epoch the agent decides %s, want Hold", d)
			}
			if got := m.get("ns/new"); got != (ownership.Memory{}) {
				t.Errorf("a FailoverIP at epoch 0 gave something up: %+v", got)
			}
			must(t, m.giveUpUnknownPast(map[string]int64{"ns/a": 8}))
			if got := m.get("ns/a"); got.GaveUpEpoch != 7 {
				t.Errorf("a second call gave up epoch %d: only the first view is unknown", got.GaveUpEpoch)
			}

			restarted := &memoryFile{path: path}
			must(t, restarted.load())
			must(t, restarted.giveUpUnknownPast(map[string]int64{"ns/a": 9}))
			if got := restarted.get("ns/a"); got.GaveUp != ownership.Release || got.GaveUpEpoch != 7 {
				t.Errorf("after a restart with the file ns/a = %+v, want released at 7 and nothing more", got)
			}
		})
	}
}

// TestMemoryFileReadersNeverWaitOnTheDisk: while a save of the file is
// stuck (a loaded disk took 800 ms), the heartbeats' and the decisions'
// reads, and a proof moving on, go through; the proof is saved once the
// disk is back.
func TestMemoryFileReadersNeverWaitOnTheDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ownership.json")
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	m := &memoryFile{path: path}
	must(t, m.set("default/a", ownership.Memory{Holding: true, HeldEpoch: 2}))
	stalled := newStalledDisk()
	m.write = stalled.write
	must(t, m.proved("default/a", now.Add(1500*time.Millisecond), 1500*time.Millisecond, 500*time.Millisecond))
	<-stalled.entered
	within(t, "reading the memory during a stalled save", func() {
		if got := m.get("default/a"); !got.Holding {
			t.Errorf("get during a stuck save = %+v, want holding", got)
		}
		must(t, m.set("default/a", ownership.Memory{Holding: true, HeldEpoch: 2, WaitingEpoch: 2}))
		must(t, m.proved("default/a", now.Add(2100*time.Millisecond), 1500*time.Millisecond, 500*time.Millisecond))
	})
	close(stalled.release)
	m.waitSaves()
	restarted := &memoryFile{path: path}
	must(t, restarted.load())
	if got := restarted.restoredProof("default/a", now.Add(time.Second), 1500*time.Millisecond); !got.After(now.Add(1500 * time.Millisecond)) {
		t.Errorf("restored proof = %v, want the one saved after the disk came back, past +1.5s", got.Sub(now))
	}
}
