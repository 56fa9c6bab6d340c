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
// disk the part a restarted agent needs: the epoch at which it holds each
// address. Without it a restarted owner would have to wait out deadtime
// before announcing again, and drop the address meanwhile.
type memoryFile struct {
	path string

	mu     sync.Mutex
	memory map[string]ownership.Memory
}

// held is the saved form: FailoverIP key -> epoch at which the node holds
// its address.
type held map[string]int64

// load reads the saved epochs back.
func (m *memoryFile) load() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.memory = map[string]ownership.Memory{}
	data, err := os.ReadFile(m.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var saved held
	if err := json.Unmarshal(data, &saved); err != nil {
		return fmt.Errorf("%s: %w", m.path, err)
	}
	for key, epoch := range saved {
		m.memory[key] = ownership.Memory{Holding: true, HeldEpoch: epoch}
	}
	return nil
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
	if m.memory == nil {
		m.memory = map[string]ownership.Memory{}
	}
	old := m.memory[key]
	if old.Holding == mem.Holding && old.HeldEpoch == mem.HeldEpoch {
		m.memory[key] = mem
		return nil
	}
	next := held{}
	for k, v := range m.memory {
		if k != key && v.Holding {
			next[k] = v.HeldEpoch
		}
	}
	if mem.Holding {
		next[key] = mem.HeldEpoch
	}
	if err := writeFileAtomic(m.path, next); err != nil {
		return err
	}
	m.memory[key] = mem
	return nil
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

// renewalFile keeps the time of the node's last Lease renewal across an
// agent restart. A restarted owner is as alive as the Lease says — whichever
// process renewed it — so it keeps its address while the new process renews
// the Lease, instead of fencing itself for lack of a proof it had a moment
// ago. The time is this machine's wall clock, read back on this machine only.
type renewalFile struct {
	path  string
	saved time.Time
}

// load returns the saved renewal, or zero when there is none or it is in the
// future (the clock was set back: it proves nothing).
func (r *renewalFile) load(now time.Time) time.Time {
	data, err := os.ReadFile(r.path)
	if err != nil {
		return time.Time{}
	}
	var t time.Time
	if err := json.Unmarshal(data, &t); err != nil || t.After(now) {
		return time.Time{}
	}
	r.saved = t
	return t
}

// save writes renewed when it is at least every apart from the last save.
func (r *renewalFile) save(renewed time.Time, every time.Duration) error {
	if renewed.IsZero() || renewed.Sub(r.saved) < every {
		return nil
	}
	if err := writeFileAtomic(r.path, renewed); err != nil {
		return err
	}
	r.saved = renewed
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
