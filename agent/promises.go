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
	"sync/atomic"
	"time"

	"github.com/webfarm/webfarm/agent/heartbeat"
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
//
// It keeps, beside them, the epochs at which this node withdrew its
// confirmation (ownership.Withdraw), saved before the withdrawal is
// reported: from then on it promises nothing at those epochs. One lock
// orders the two, so that no confirmation leaves after a withdrawal that
// the decision to withdraw did not see.
//
// A confirmation waits on the disk only when the file does not cover it
// yet. Within half of promiseSlack of that, the file is extended in the
// background, so that on a loaded disk (small writes took up to 800 ms)
// the heartbeats still go out on time.
type promiseFile struct {
	path, withdrawalsPath string

	// saving orders the writes of the promises' file (lock it before mu):
	// each writes promises at least as long as the one before.
	saving sync.Mutex
	// extending: a background extension is under way; extensions counts
	// them until done (waitExtensions).
	extending  atomic.Bool
	extensions sync.WaitGroup

	mu sync.Mutex
	// heard is what this process promised, or read back; written is what
	// the file says, at least heard.
	heard, written map[string]time.Time
	// floor stands for every promise when the record was lost.
	floor time.Time
	// withdrawn is the latest epoch withdrawn from, per FailoverIP, as
	// saved; unknownPast: the record was lost, and the epochs of the first
	// view must be withdrawn from before anything is confirmed or reported
	// (withdrawUnknownPast).
	withdrawn   map[string]int64
	unknownPast bool
}

// errWithdrawn refuses a promise at an epoch this node withdrew from.
var errWithdrawn = errors.New("withdrawn from the epoch it would confirm")

// promisesPath keeps the promises of peer confirmations across restarts.
func (o Options) promisesPath() string { return filepath.Join(o.StateDir, "promises.json") }

// withdrawalsPath keeps the epochs this node withdrew from.
func (o Options) withdrawalsPath() string { return filepath.Join(o.StateDir, "withdrawals.json") }

// load reads the saved promises back at now. When there are none it counts
// every promise from now, and starts a record so that the next restart
// finds one.
func (p *promiseFile) load(now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.heard, p.written, p.withdrawn = map[string]time.Time{}, map[string]time.Time{}, map[string]int64{}
	if err := p.loadWithdrawals(); err != nil {
		p.unknownPast = true
		return err
	}
	data, err := os.ReadFile(p.path)
	if err == nil {
		err = json.Unmarshal(data, &p.written)
	}
	if err == nil {
		p.heard = maps.Clone(p.written)
		return nil
	}
	p.floor, p.unknownPast = now, true
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w; keeping every promise from now", p.path, err)
	}
	return writeFileAtomic(p.path, p.written)
}

// loadWithdrawals reads the withdrawals back. A missing file is none: an
// older agent withdrew from nothing, and a lost state directory loses the
// promises too, which load handles.
func (p *promiseFile) loadWithdrawals() error {
	if p.withdrawalsPath == "" {
		return nil
	}
	data, err := os.ReadFile(p.withdrawalsPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = json.Unmarshal(data, &p.withdrawn)
	}
	if err != nil {
		p.withdrawn = map[string]int64{}
		return fmt.Errorf("%s: %w; withdrawing from every current epoch", p.withdrawalsPath, err)
	}
	return nil
}

// Promise records promises before they are made, saving them when the file
// does not cover them yet. It refuses them all when one confirms an epoch
// this node withdrew from, or when the record was lost and the current
// epochs are not withdrawn from yet.
func (p *promiseFile) Promise(promised map[string]heartbeat.Promise) error {
	if p.covered(promised) {
		return p.promise(promised, false)
	}
	// The file must cover them before they leave: this waits for the disk.
	p.saving.Lock()
	defer p.saving.Unlock()
	return p.promise(promised, true)
}

// covered tells whether the file already covers promised.
func (p *promiseFile) covered(promised map[string]heartbeat.Promise) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, pr := range promised {
		if pr.HeardAt.After(p.written[key]) {
			return false
		}
	}
	return true
}

// promise is Promise once the order of writes is taken care of: with save,
// p.saving is held, and the file is written if it does not cover promised.
func (p *promiseFile) promise(promised map[string]heartbeat.Promise, save bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.unknownPast {
		return errWithdrawn
	}
	next := maps.Clone(p.written)
	if next == nil {
		next = map[string]time.Time{}
	}
	write, soon := false, false
	heardAt := make(map[string]time.Time, len(promised))
	for key, pr := range promised {
		if w, ok := p.withdrawn[key]; ok && w >= pr.Epoch {
			return fmt.Errorf("confirming %s at epoch %d: %w", key, pr.Epoch, errWithdrawn)
		}
		heardAt[key] = pr.HeardAt
		if pr.HeardAt.After(p.written[key]) {
			next[key], write = pr.HeardAt.Add(promiseSlack), true
		}
		soon = soon || pr.HeardAt.Add(promiseSlack/2).After(p.written[key])
	}
	if write && !save {
		return fmt.Errorf("saving peer promises: the file moved back meanwhile")
	}
	if write {
		if err := writeFileAtomic(p.path, next); err != nil {
			return fmt.Errorf("saving peer promises: %w", err)
		}
		p.written = next
	} else if soon {
		p.extendInBackground(heardAt)
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

// extendInBackground writes the file promiseSlack past heardAt, beside
// the heartbeats, unless an extension is under way; p.mu held.
func (p *promiseFile) extendInBackground(heardAt map[string]time.Time) {
	if !p.extending.CompareAndSwap(false, true) {
		return
	}
	p.extensions.Add(1)
	go func() {
		defer p.extensions.Done()
		defer p.extending.Store(false)
		p.saving.Lock()
		defer p.saving.Unlock()
		p.mu.Lock()
		next := maps.Clone(p.written)
		if next == nil {
			next = map[string]time.Time{}
		}
		for key, at := range heardAt {
			next[key] = laterOf(next[key], at.Add(promiseSlack))
		}
		p.mu.Unlock()
		// A failure leaves the file as it was: the next confirmation that
		// it does not cover saves it itself.
		if writeFileAtomic(p.path, next) != nil {
			return
		}
		p.mu.Lock()
		if p.written == nil {
			p.written = map[string]time.Time{}
		}
		for key, at := range next {
			p.written[key] = laterOf(p.written[key], at)
		}
		p.mu.Unlock()
	}()
}

// waitExtensions waits for the background extension under way, if any.
func (p *promiseFile) waitExtensions() { p.extensions.Wait() }

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
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

// errPromisedSince refuses a withdrawal decided before the latest promise.
var errPromisedSince = errors.New("a confirmation left since the decision to withdraw")

// withdraw saves that this node never confirms the owner of key at epoch
// again, unless it promised something since promisedAt, the promise the
// decision to withdraw was made on: that promise may vouch for the owner
// still.
func (p *promiseFile) withdraw(key string, epoch int64, promisedAt time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.heard[key].After(promisedAt) {
		return fmt.Errorf("withdrawing from %s at epoch %d: %w", key, epoch, errPromisedSince)
	}
	if p.withdrawn[key] >= epoch {
		return nil
	}
	next := maps.Clone(p.withdrawn)
	next[key] = epoch
	if err := writeFileAtomic(p.withdrawalsPath, next); err != nil {
		return fmt.Errorf("saving the withdrawal from %s at epoch %d: %w", key, epoch, err)
	}
	p.withdrawn = next
	return nil
}

// withdrawnFrom is the latest epoch of key this node withdrew from; 0 if
// none.
func (p *promiseFile) withdrawnFrom(key string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.withdrawn[key]
}

// withdrawUnknownPast withdraws, once after a start that lost the record,
// from epochs, the current epochs at which the node's FrontNode reports
// the owner unheard: a previous process withdrew from them, and the
// controller may move the address on that report. An epoch it withdrew
// from without the report landing moves nothing, and one written after the
// restart was never confirmed by it. Until that is saved, no promise is
// made.
func (p *promiseFile) withdrawUnknownPast(epochs map[string]int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.unknownPast {
		return nil
	}
	next := maps.Clone(p.withdrawn)
	for key, epoch := range epochs {
		next[key] = max(next[key], epoch)
	}
	if err := writeFileAtomic(p.withdrawalsPath, next); err != nil {
		return fmt.Errorf("saving the withdrawals of a start without a record: %w", err)
	}
	p.withdrawn, p.unknownPast = next, false
	return nil
}
