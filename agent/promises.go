package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// promiseSlack is how far ahead of a promise the file is written, so that a
// node confirming an owner every keepalive writes about once per
// promiseSlack, not at every heartbeat. A restarted node waits up to that
// much longer than it promised.
const promiseSlack = time.Second

// promiseFile keeps the promises this node makes to the owners it confirms
// (heartbeat.Promises): per FailoverIP, the latest arrival time of an
// owner's heartbeat it echoed. It saves them before the confirmations leave,
// so that a restarted node keeps them; a node that finds no record waits as
// if it had confirmed at its start. The times are this machine's wall
// clock, read back on this machine only.
type promiseFile struct {
	path string

	mu sync.Mutex
	// heard is what this process promised, or read back; written is what
	// the file says, at least heard.
	heard, written map[string]time.Time
	// floor stands for every promise when the record was lost.
	floor time.Time
}

// promisesPath keeps the promises of peer confirmations across restarts.
func (o Options) promisesPath() string { return filepath.Join(o.StateDir, "promises.json") }

// load reads the saved promises back at now. When there are none it counts
// every promise from now, and starts a record so that the next restart
// finds one.
func (p *promiseFile) load(now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.heard, p.written = map[string]time.Time{}, map[string]time.Time{}
	data, err := os.ReadFile(p.path)
	if err == nil {
		err = json.Unmarshal(data, &p.written)
	}
	if err == nil {
		p.heard = maps.Clone(p.written)
		return nil
	}
	p.floor = now
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w; keeping every promise from now", p.path, err)
	}
	return writeFileAtomic(p.path, p.written)
}

// Promise records promises before they are made, saving them when the file
// does not cover them yet.
func (p *promiseFile) Promise(heardAt map[string]time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	next := maps.Clone(p.written)
	if next == nil {
		next = map[string]time.Time{}
	}
	save := false
	for key, at := range heardAt {
		if at.After(p.written[key]) {
			next[key], save = at.Add(promiseSlack), true
		}
	}
	if save {
		if err := writeFileAtomic(p.path, next); err != nil {
			return fmt.Errorf("saving peer promises: %w", err)
		}
		p.written = next
	}
	if p.heard == nil {
		p.heard = map[string]time.Time{}
	}
	for key, at := range heardAt {
		if at.After(p.heard[key]) {
			p.heard[key] = at
		}
	}
	return nil
}

// promised is the arrival time of the latest heartbeat this node echoed to
// confirm another node's ownership of key (ownership.Input.Promised).
func (p *promiseFile) promised(key string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if at := p.heard[key]; at.After(p.floor) {
		return at
	}
	return p.floor
}
