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

	"github.com/webfarm/webfarm/agent/heartbeat"
)

// promiseSlack is how far ahead of a promise the file is written, so that a
// node confirming an owner every keepalive writes about once per
// promiseWriteEvery, not at every heartbeat. A restarted node waits up to
// that much longer than it promised.
const promiseSlack = 3 * time.Second

// promiseWriteEvery is how often a node confirming an owner extends the
// file: once it covers less than promiseSlack minus this. A disk that
// stalls a write for up to promiseSlack-promiseWriteEvery (the soak saw
// 1.7 s) never holds a confirmation back.
const promiseWriteEvery = 500 * time.Millisecond

// promiseWaitAtMost is how long a confirmation that the file does not
// cover yet waits for it to be written, holding its heartbeat back: the
// first confirmation of a new owner goes at once on a healthy disk, and a
// stalled disk delays the heartbeats by no more than this.
const promiseWaitAtMost = 50 * time.Millisecond

// errNotSavedYet holds back the confirmations that the file does not cover
// yet: they go without their ack while it is written beside them.
var errNotSavedYet = errors.New("peer promises not saved yet")

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
// Nothing here waits on the disk under mu, and a confirmation waits for it
// promiseWaitAtMost at most: one the file does not cover yet is refused
// after that (its heartbeat goes without acks) while the file is written
// in the background. The file is extended long before it runs out, so
// that on a loaded disk (small writes took up to 1.7 s) the heartbeats
// still go out on time and carry their acks.
type promiseFile struct {
	path, withdrawalsPath string
	// write saves a file; writeFileAtomic unless a test slows it down.
	write func(path string, v any) error

	// saving orders the writes of the promises' file, savingWithdrawals
	// those of the withdrawals' (lock either before mu): each writes at
	// least what the one before did.
	saving, savingWithdrawals sync.Mutex
	// extensions counts the background extensions until done
	// (waitExtensions).
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
	// withdrawing is a withdrawal being saved: no promise is made at its
	// epoch meanwhile, whether the save succeeds or not.
	withdrawing map[string]int64
	// extending is closed when the background extension under way ends;
	// nil when none is.
	extending chan struct{}
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

// Promise records promises before they are made. It waits on the disk for
// promiseWaitAtMost at most, and never under mu: promises the file does not
// cover yet are written in the background, and refused (errNotSavedYet)
// if that takes longer. It refuses them all when one confirms an epoch
// this node withdrew from, or when the record was lost and the current
// epochs are not withdrawn from yet.
func (p *promiseFile) Promise(promised map[string]heartbeat.Promise) error {
	saved, err := p.tryPromise(promised)
	if saved == nil {
		return err
	}
	timer := time.NewTimer(promiseWaitAtMost)
	defer timer.Stop()
	select {
	case <-saved:
	case <-timer.C:
		return errNotSavedYet
	}
	if saved, err = p.tryPromise(promised); saved != nil {
		return errNotSavedYet
	}
	return err
}

// tryPromise makes promised if the file covers it, and extends the file in
// the background when it covers it by less than
// promiseSlack-promiseWriteEvery. It returns the extension's end when the
// file does not cover promised yet.
func (p *promiseFile) tryPromise(promised map[string]heartbeat.Promise) (<-chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.unknownPast {
		return nil, errWithdrawn
	}
	uncovered, soon := false, false
	heardAt := make(map[string]time.Time, len(promised))
	for key, pr := range promised {
		if w, ok := p.refusedFrom(key); ok && w >= pr.Epoch {
			return nil, fmt.Errorf("confirming %s at epoch %d: %w", key, pr.Epoch, errWithdrawn)
		}
		heardAt[key] = pr.HeardAt
		uncovered = uncovered || pr.HeardAt.After(p.written[key])
		soon = soon || pr.HeardAt.Add(promiseSlack-promiseWriteEvery).After(p.written[key])
	}
	var saved <-chan struct{}
	if soon {
		saved = p.extendInBackground(heardAt)
	}
	if uncovered {
		return saved, errNotSavedYet
	}
	if p.heard == nil {
		p.heard = map[string]time.Time{}
	}
	for key, at := range heardAt {
		p.heard[key] = laterOf(p.heard[key], at)
	}
	return nil, nil
}

// extendInBackground writes the file promiseSlack past heardAt, beside
// the heartbeats, unless an extension is under way, and returns the end of
// the one under way; p.mu held.
func (p *promiseFile) extendInBackground(heardAt map[string]time.Time) <-chan struct{} {
	if p.extending != nil {
		return p.extending
	}
	done := make(chan struct{})
	p.extending = done
	p.extensions.Add(1)
	go func() {
		defer p.extensions.Done()
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
		// A failure leaves the file as it was: the next confirmation
		// tries again.
		err := p.save(p.path, next)
		p.mu.Lock()
		defer p.mu.Unlock()
		if err == nil {
			if p.written == nil {
				p.written = map[string]time.Time{}
			}
			for key, at := range next {
				p.written[key] = laterOf(p.written[key], at)
			}
		}
		p.extending = nil
		close(done)
	}()
	return done
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

// refusedFrom is the latest epoch of key withdrawn from or being
// withdrawn from, if any; p.mu held.
func (p *promiseFile) refusedFrom(key string) (int64, bool) {
	w, saved := p.withdrawn[key]
	v, saving := p.withdrawing[key]
	return max(w, v), saved || saving
}

// withdraw saves that this node never confirms the owner of key at epoch
// again, unless it promised something since promisedAt, the promise the
// decision to withdraw was made on: that promise may vouch for the owner
// still. From the moment it is called no promise is made at epoch, and the
// disk is written without mu, so that heartbeats go on meanwhile.
func (p *promiseFile) withdraw(key string, epoch int64, promisedAt time.Time) error {
	p.savingWithdrawals.Lock()
	defer p.savingWithdrawals.Unlock()
	next, err := p.startWithdrawal(key, epoch, promisedAt)
	if next == nil || err != nil {
		return err
	}
	err = p.save(p.withdrawalsPath, next)
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.withdrawing, key)
	if err != nil {
		return fmt.Errorf("saving the withdrawal from %s at epoch %d: %w", key, epoch, err)
	}
	p.withdrawn = next
	return nil
}

// startWithdrawal refuses promises at epoch from now on and returns the
// withdrawals to save; nil when they are saved already.
func (p *promiseFile) startWithdrawal(key string, epoch int64, promisedAt time.Time) (map[string]int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.heard[key].After(promisedAt) {
		return nil, fmt.Errorf("withdrawing from %s at epoch %d: %w", key, epoch, errPromisedSince)
	}
	if p.withdrawn[key] >= epoch {
		return nil, nil
	}
	if p.withdrawing == nil {
		p.withdrawing = map[string]int64{}
	}
	p.withdrawing[key] = epoch
	next := maps.Clone(p.withdrawn)
	if next == nil {
		next = map[string]int64{}
	}
	next[key] = epoch
	return next, nil
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
	p.savingWithdrawals.Lock()
	defer p.savingWithdrawals.Unlock()
	p.mu.Lock()
	if !p.unknownPast {
		p.mu.Unlock()
		return nil
	}
	next := maps.Clone(p.withdrawn)
	p.mu.Unlock()
	if next == nil {
		next = map[string]int64{}
	}
	for key, epoch := range epochs {
		next[key] = max(next[key], epoch)
	}
	if err := p.save(p.withdrawalsPath, next); err != nil {
		return fmt.Errorf("saving the withdrawals of a start without a record: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.withdrawn, p.unknownPast = next, false
	return nil
}

// save writes v to path with p.write.
func (p *promiseFile) save(path string, v any) error {
	if p.write != nil {
		return p.write(path, v)
	}
	return writeFileAtomic(path, v)
}
