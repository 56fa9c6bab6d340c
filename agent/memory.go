package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/webfarm/webfarm/agent/ownership"
)

// memoryFile keeps the ownership memory of every FailoverIP, and saves to
// disk what a restarted agent needs to keep serving: the epoch at which it
// holds each address, and until when it had proved itself alive for it (by
// its Lease or its peers). Without them a restarted owner would fence itself
// at once, for lack of the proofs its previous process had a moment ago. The
// times are this machine's wall clock, read back on this machine only.
//
// A proof is saved with the window it was counted with (deadtime minus
// guard), so that a restart under a FailoverIP whose timings were cut in the
// meantime keeps the proof only as long as the new window allows: the
// restarted agent reports the new spec generation at once, and from then on
// the controller fences it by the new timings.
type memoryFile struct {
	path string

	mu     sync.Mutex
	memory map[string]ownership.Memory
	// provenUntil is, per held address, until when the node was last proved
	// alive; written is what the file says.
	provenUntil, written map[string]proof
}

// proof is until when a node is proved alive, by a proof that lasts window.
type proof struct {
	until  time.Time
	window time.Duration
}

// heldAddress is the saved form of one held address.
type heldAddress struct {
	Epoch       int64     `json:"epoch"`
	ProvenUntil time.Time `json:"provenUntil,omitzero"`
	// ProvenWindow is how long the proof lasts from its start; 0 in files
	// written before it was saved.
	ProvenWindow time.Duration `json:"provenWindow,omitempty"`
}

// load reads the saved state back.
func (m *memoryFile) load() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	data, err := os.ReadFile(m.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var saved map[string]heldAddress
	if err := json.Unmarshal(data, &saved); err != nil {
		return fmt.Errorf("%s: %w", m.path, err)
	}
	for key, h := range saved {
		m.memory[key] = ownership.Memory{Holding: true, HeldEpoch: h.Epoch}
		p := proof{until: h.ProvenUntil, window: h.ProvenWindow}
		m.provenUntil[key], m.written[key] = p, p
	}
	return nil
}

func (m *memoryFile) init() {
	if m.memory == nil {
		m.memory, m.provenUntil, m.written = map[string]ownership.Memory{}, map[string]proof{}, map[string]proof{}
	}
}

func (m *memoryFile) get(key string) ownership.Memory {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.memory[key]
}

// set changes the memory of key, saving it first when what a restart needs
// changed: a crash in between leaves the file saying more, never less, than
// what is on the link.
func (m *memoryFile) set(key string, mem ownership.Memory) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	old := m.memory[key]
	if old.Holding == mem.Holding && old.HeldEpoch == mem.HeldEpoch {
		m.memory[key] = mem
		return nil
	}
	next := m.memory[key]
	m.memory[key] = mem
	if !mem.Holding {
		delete(m.provenUntil, key)
		delete(m.written, key)
	}
	if err := m.save(); err != nil {
		m.memory[key] = next
		return err
	}
	return nil
}

// proved records that the node is proved alive for key until until, by a
// proof that lasts window, saving it when it moved on by every since the
// last save or its window changed.
func (m *memoryFile) proved(key string, until time.Time, window, every time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	m.provenUntil[key] = proof{until: until, window: window}
	if w := m.written[key]; until.Sub(w.until) < every && window == w.window {
		return nil
	}
	return m.save()
}

// restoredProof is until when the previous agent process's proof for key
// lasts under window, the current deadtime minus guard: counted from when
// that proof started, whatever window it was saved with. Zero when it
// proved nothing that is still believable at now: a proof that started
// after now (the clock was set back).
func (m *memoryFile) restoredProof(key string, now time.Time, window time.Duration) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.written[key]
	if w.until.IsZero() {
		return time.Time{}
	}
	saved := w.window
	if saved <= 0 {
		saved = window
	}
	start := w.until.Add(-saved)
	if start.After(now) {
		return time.Time{}
	}
	return start.Add(window)
}

func (m *memoryFile) save() error {
	saved := map[string]heldAddress{}
	for key, mem := range m.memory {
		if mem.Holding {
			p := m.provenUntil[key]
			saved[key] = heldAddress{Epoch: mem.HeldEpoch, ProvenUntil: p.until, ProvenWindow: p.window}
		}
	}
	if err := writeFileAtomic(m.path, saved); err != nil {
		return err
	}
	for key, h := range saved {
		m.written[key] = proof{until: h.ProvenUntil, window: h.ProvenWindow}
	}
	return nil
}

// holdingAny tells whether the node holds any address.
func (m *memoryFile) holdingAny() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mem := range m.memory {
		if mem.Holding {
			return true
		}
	}
	return false
}

func writeFileAtomic(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
