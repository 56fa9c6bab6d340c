package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/webfarm/webfarm/agent/ownership"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// memoryFile keeps the ownership memory of every FailoverIP, and saves to
// disk what a restarted agent needs to keep serving: the epoch at which it
// holds each address, and until when it had proved itself alive for it (by
// its Lease or its peers). Without them a restarted owner would fence itself
// at once, for lack of the proofs its previous process had a moment ago. It
// also saves the epoch at which the agent last gave each address up
// (released or fenced): the controller hands an address over as soon as it
// reads that report, so a restarted agent must never hold again at that
// epoch. The times are this machine's wall clock, read back on this machine
// only.
//
// Each memory belongs to one FailoverIP object, by UID: a memory whose object
// is gone, or was recreated under the same name, is an orphan (orphans) —
// its address is removed and the memory dropped (forget), so that no epoch
// remembered for the old object blocks the new one.
//
// A proof is saved with the window it was counted with (deadtime minus
// guard), so that a restart under a FailoverIP whose timings were cut in the
// meantime keeps the proof only as long as the new window allows: the
// restarted agent reports the new spec generation at once, and from then on
// the controller fences it by the new timings.
//
// Nothing waits on the disk that does not have to. The heartbeats and the
// decisions read the memory under mu, which no write of the file holds; a
// change that a restart needs is saved before the caller goes on (set), but
// a proof moving on is saved in the background (proved): a file that lags
// the proof only makes a restarted agent fence sooner. On a loaded disk a
// small write took up to 800 ms, and an owner whose heartbeats waited
// behind the proof's save every 100 ms went unheard by its voters.
type memoryFile struct {
	path string
	// write saves the file; writeFileAtomic unless a test slows it down.
	write func(path string, v any) error

	// saving orders the writes of the file: each writes a state at least as
	// new as the one before.
	saving sync.Mutex
	// saveSoon wakes the background saver, started once; pendingSaves
	// counts the saves asked of it and not yet done (waitSaves).
	startSaver   sync.Once
	saveSoon     chan struct{}
	pendingSaves sync.WaitGroup

	mu     sync.Mutex
	memory map[string]ownership.Memory
	// objects is, per key, the object the memory belongs to and where its
	// address goes; an empty UID is not known yet (a file saved before UIDs
	// were).
	objects map[string]heldObject
	// provenUntil is, per held address, until when the node was last proved
	// alive; written is what the file says.
	provenUntil, written map[string]proof
	// unknownPast: load found no memory to read back, so the agent cannot
	// tell which epochs its previous process gave up (giveUpUnknownPast).
	unknownPast bool
	// saveErr is the error of the last background save, reported once by
	// the next proved.
	saveErr error
}

// proof is until when a node is proved alive, by a proof that lasts window.
type proof struct {
	until  time.Time
	window time.Duration
}

// heldObject is the FailoverIP object a memory belongs to, and the address
// it puts where: enough to remove that address once the object is gone.
type heldObject struct {
	UID       types.UID `json:"uid,omitempty"`
	Address   string    `json:"address,omitempty"`
	Interface string    `json:"interface,omitempty"`
}

// heldObjectOf identifies fip.
func heldObjectOf(fip *webfarmv1.FailoverIP) heldObject {
	return heldObject{UID: fip.UID, Address: fip.Spec.Address, Interface: fip.Spec.Interface}
}

// heldAddress is the saved form of the memory of one address: the epoch it
// is held at (0 when it is not held) and the last epoch it was given up at.
// A file written before UIDs were saved has only the epoch and the proof;
// its entries are bound to the object of the same name that the agent finds
// first.
type heldAddress struct {
	heldObject
	Epoch       int64     `json:"epoch"`
	ProvenUntil time.Time `json:"provenUntil,omitzero"`
	// ProvenWindow is how long the proof lasts from its start; 0 in files
	// written before it was saved.
	ProvenWindow time.Duration `json:"provenWindow,omitempty"`
	// GaveUp is "Release" or "Fence"; empty when nothing was given up.
	GaveUp       string `json:"gaveUp,omitempty"`
	GaveUpEpoch  int64  `json:"gaveUpEpoch,omitempty"`
	GaveUpReason string `json:"gaveUpReason,omitempty"`
	// GaveUpCause is, for a fence, its ownership.FenceCause.
	GaveUpCause string `json:"gaveUpCause,omitempty"`
}

// memory is the ownership memory a saved entry brings back.
func (h heldAddress) memory() ownership.Memory {
	m := ownership.Memory{Holding: h.Epoch > 0, HeldEpoch: h.Epoch}
	switch h.GaveUp {
	case ownership.Release.String():
		m.GaveUp = ownership.Release
	case ownership.Fence.String():
		m.GaveUp = ownership.Fence
	}
	if m.GaveUp != ownership.NotOwner {
		m.GaveUpEpoch, m.GaveUpReason, m.GaveUpCause = h.GaveUpEpoch, h.GaveUpReason, ownership.FenceCause(h.GaveUpCause)
	}
	if m.GaveUp == ownership.Fence && m.GaveUpCause == "" {
		m.GaveUpCause = ownership.Unrecorded
	}
	return m
}

// persisted tells whether a restart needs mem: it holds or gave up an epoch.
func persisted(mem ownership.Memory) bool { return mem.Holding || mem.GaveUp != ownership.NotOwner }

// entry is the memory of one key and the object it belongs to.
type entry struct {
	key    string
	object heldObject
	memory ownership.Memory
}

// load reads the saved state back. When there is none, or it is
// unreadable, the memory starts empty and unknownPast.
func (m *memoryFile) load() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	m.unknownPast = true
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
	m.unknownPast = false
	for key, h := range saved {
		m.memory[key] = h.memory()
		m.objects[key] = h.heldObject
		p := proof{until: h.ProvenUntil, window: h.ProvenWindow}
		m.provenUntil[key], m.written[key] = p, p
	}
	return nil
}

func (m *memoryFile) init() {
	if m.memory == nil {
		m.memory, m.objects = map[string]ownership.Memory{}, map[string]heldObject{}
		m.provenUntil, m.written = map[string]proof{}, map[string]proof{}
	}
}

// orphans lists the memories whose object is not live — gone, or another
// object under the same name — or whose address or interface differ from the
// live object's. A memory of unknown UID (an old file) belongs to the live
// object of its name, if any.
func (m *memoryFile) orphans(live map[string]heldObject) []entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.entries(func(key string, _ ownership.Memory) bool {
		obj, ok := live[key]
		return !ok || !belongs(m.objects[key], obj)
	})
}

// belongs tells whether a memory saved for stored belongs to the live object.
func belongs(stored, live heldObject) bool {
	return stored.UID == "" || stored == live
}

// bind records which live object each memory belongs to, for every live
// object that has no orphaned memory: a memory bound once can no longer be
// mistaken for that of a later object of the same name. A held address whose
// UID was not known yet is saved with it.
func (m *memoryFile) bind(live map[string]heldObject) error {
	return m.change(func() (bool, func()) { return m.bindLocked(live), nil })
}

func (m *memoryFile) bindLocked(live map[string]heldObject) bool {
	changed := false
	for key, obj := range live {
		stored, remembered := m.objects[key]
		if remembered && !belongs(stored, obj) {
			continue
		}
		if persisted(m.memory[key]) && stored != obj {
			changed = true
		}
		m.objects[key] = obj
	}
	for key := range m.objects {
		if _, ok := live[key]; !ok {
			if _, ok := m.memory[key]; !ok {
				delete(m.objects, key)
			}
		}
	}
	return changed
}

// forget drops the memory of key if it still belongs to obj: its address is
// no longer on this node.
func (m *memoryFile) forget(key string, obj heldObject) error {
	return m.change(func() (bool, func()) {
		if m.objects[key] != obj {
			return false, nil
		}
		mem := m.memory[key]
		delete(m.memory, key)
		delete(m.objects, key)
		delete(m.provenUntil, key)
		delete(m.written, key)
		return persisted(mem), func() { m.memory[key], m.objects[key] = mem, obj }
	})
}

// held lists the addresses the node holds, with the object each belongs to.
func (m *memoryFile) held() []entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.entries(func(_ string, mem ownership.Memory) bool { return mem.Holding })
}

// entries lists, sorted by key, the memories that keep says to; m.mu held.
func (m *memoryFile) entries(keep func(string, ownership.Memory) bool) []entry {
	var out []entry
	for key, mem := range m.memory {
		if keep(key, mem) {
			out = append(out, entry{key: key, object: m.objects[key], memory: mem})
		}
	}
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	return out
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
	m.init()
	if !restartNeeds(m.memory[key], mem) {
		// The fast path, every pass: nothing to save, no wait on a save
		// in flight.
		m.memory[key] = mem
		m.mu.Unlock()
		return nil
	}
	m.mu.Unlock()
	return m.change(func() (bool, func()) {
		old := m.memory[key]
		m.memory[key] = mem
		if !restartNeeds(old, mem) {
			return false, nil
		}
		if !mem.Holding {
			delete(m.provenUntil, key)
			delete(m.written, key)
		}
		return true, func() { m.memory[key] = old }
	})
}

// restartNeeds tells whether going from old to mem changes what a restarted
// agent reads back.
func restartNeeds(old, mem ownership.Memory) bool {
	return old.Holding != mem.Holding || old.HeldEpoch != mem.HeldEpoch || old.GaveUp != mem.GaveUp || old.GaveUpEpoch != mem.GaveUpEpoch
}

// proved records that the node is proved alive for key until until, by a
// proof that lasts window, and has it saved in the background when it moved
// on by every since the last save or its window changed. It returns the
// error of the last background save, once.
func (m *memoryFile) proved(key string, until time.Time, window, every time.Duration) error {
	m.mu.Lock()
	m.init()
	m.provenUntil[key] = proof{until: until, window: window}
	w := m.written[key]
	due := until.Sub(w.until) >= every || window != w.window
	err := m.saveErr
	m.saveErr = nil
	m.mu.Unlock()
	if due {
		m.saveInBackground()
	}
	return err
}

// saveInBackground has the background saver write the file soon, once
// however many times it is asked before it gets to it.
func (m *memoryFile) saveInBackground() {
	m.startSaver.Do(func() {
		m.saveSoon = make(chan struct{}, 1)
		go m.saver()
	})
	m.pendingSaves.Add(1)
	select {
	case m.saveSoon <- struct{}{}:
	default:
		m.pendingSaves.Done() // the save already asked for writes this too
	}
}

// saver writes the file each time it is asked, for the process's life.
func (m *memoryFile) saver() {
	for range m.saveSoon {
		err := m.change(func() (bool, func()) { return true, nil })
		if err != nil {
			m.mu.Lock()
			m.saveErr = err
			m.mu.Unlock()
		}
		m.pendingSaves.Done()
	}
}

// waitSaves waits until the saves asked of the background saver are done.
func (m *memoryFile) waitSaves() { m.pendingSaves.Wait() }

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

// savedProofEnd is when the last proof saved for any held address ends, by
// the window it was saved with; zero when the node holds nothing.
func (m *memoryFile) savedProofEnd() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	var end time.Time
	for key, mem := range m.memory {
		if w := m.written[key]; mem.Holding && w.until.After(end) {
			end = w.until
		}
	}
	return end
}

// giveUpUnknownPast is for an agent that found no memory: it gives up, and
// saves, the current epoch of every FailoverIP (epochs, by key), as if it
// had released them, so that it holds again only at a later epoch. Its
// previous process may have reported any of them Released or Fenced, and
// the controller hands an address over on that word alone; an epoch later
// than the ones the API server shows after the restart was written after
// the previous process died, and gave nothing up. The rule costs a stateless
// restart of an owner a new epoch, never a second holder; its report of
// Released is true, as failover.restore removed every address it does not
// hold first. It does nothing once the file exists.
func (m *memoryFile) giveUpUnknownPast(epochs map[string]int64) error {
	m.mu.Lock()
	unknown := m.unknownPast
	m.mu.Unlock()
	if !unknown {
		return nil
	}
	return m.change(func() (bool, func()) {
		if !m.unknownPast {
			return false, nil
		}
		prev := maps.Clone(m.memory)
		for key, epoch := range epochs {
			mem := m.memory[key]
			if epoch > 0 && !mem.Holding && (mem.GaveUp == ownership.NotOwner || mem.GaveUpEpoch < epoch) {
				mem.GaveUp, mem.GaveUpEpoch, mem.GaveUpReason = ownership.Release, epoch, "agent restarted without its memory"
				m.memory[key] = mem
			}
		}
		m.unknownPast = false
		return true, func() { m.memory, m.unknownPast = prev, true }
	})
}

// change applies fn to the memory under mu and, when fn says so, saves the
// file: after the saves before it, and outside mu, so that readers never
// wait on the disk. A failed save undoes fn's change with the revert it
// returned.
func (m *memoryFile) change(fn func() (save bool, revert func())) error {
	m.saving.Lock()
	defer m.saving.Unlock()
	m.mu.Lock()
	m.init()
	save, revert := fn()
	var out map[string]heldAddress
	if save {
		out = m.saved()
	}
	m.mu.Unlock()
	if !save {
		return nil
	}
	write := m.write
	if write == nil {
		write = writeFileAtomic
	}
	if err := write(m.path, out); err != nil {
		if revert != nil {
			m.mu.Lock()
			revert()
			m.mu.Unlock()
		}
		return err
	}
	m.mu.Lock()
	for key, h := range out {
		if h.Epoch > 0 {
			m.written[key] = proof{until: h.ProvenUntil, window: h.ProvenWindow}
		}
	}
	m.mu.Unlock()
	return nil
}

// saved is what the file says of the memory; m.mu held.
func (m *memoryFile) saved() map[string]heldAddress {
	out := map[string]heldAddress{}
	for key, mem := range m.memory {
		if !persisted(mem) {
			continue
		}
		h := heldAddress{heldObject: m.objects[key]}
		if mem.Holding {
			p := m.provenUntil[key]
			h.Epoch, h.ProvenUntil, h.ProvenWindow = mem.HeldEpoch, p.until, p.window
		}
		if mem.GaveUp != ownership.NotOwner {
			h.GaveUp, h.GaveUpEpoch, h.GaveUpReason, h.GaveUpCause = mem.GaveUp.String(), mem.GaveUpEpoch, mem.GaveUpReason, string(mem.GaveUpCause)
		}
		out[key] = h
	}
	return out
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
	return writeBytesAtomic(path, data)
}

// writeBytesAtomic replaces path with data, mode 0600, never half-written.
func writeBytesAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
