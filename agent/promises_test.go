package agent

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/webfarm/webfarm/agent/heartbeat"
)

// promiseAt is a confirmation of shop/www's owner at epoch, heard at.
func promiseAt(at time.Time, epoch int64) map[string]heartbeat.Promise {
	return map[string]heartbeat.Promise{"shop/www": {HeardAt: at, Epoch: epoch}}
}

// promiseSaved makes promises, waiting for the file to cover them when it
// takes longer than promiseWaitAtMost, as the next heartbeat would.
func promiseSaved(t *testing.T, p *promiseFile, promised map[string]heartbeat.Promise) {
	t.Helper()
	err := p.Promise(promised)
	if errors.Is(err, errNotSavedYet) {
		p.waitExtensions()
		err = p.Promise(promised)
	}
	must(t, err)
}

func TestPromisesSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "promises.json")
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &promiseFile{path: path, withdrawalsPath: filepath.Join(filepath.Dir(path), "withdrawals.json")}
	t.Cleanup(p.waitExtensions)
	must(t, p.load(start))
	must(t, p.withdrawUnknownPast(nil))
	if got := p.promised("shop/www"); !got.Equal(start) {
		t.Errorf("a node without a record promised at %v, want its start %v", got, start)
	}

	heard := start.Add(time.Minute)
	promiseSaved(t, p, promiseAt(heard, 3))
	if got := p.promised("shop/www"); !got.Equal(heard) {
		t.Errorf("promised = %v, want %v", got, heard)
	}
	// The file runs ahead by the slack, so that confirming every keepalive
	// does not write every keepalive.
	if got := saved(t, path)["shop/www"]; !got.Equal(heard.Add(promiseSlack)) {
		t.Errorf("file says %v, want %v", got, heard.Add(promiseSlack))
	}
	must(t, p.Promise(promiseAt(heard.Add(promiseWriteEvery/2), 3)))
	p.waitExtensions()
	if got := saved(t, path)["shop/www"]; !got.Equal(heard.Add(promiseSlack)) {
		t.Errorf("a promise the file covered well ahead rewrote it to %v", got)
	}
	later := heard.Add(2 * promiseSlack)
	promiseSaved(t, p, promiseAt(later, 3))
	if got := saved(t, path)["shop/www"]; !got.Equal(later.Add(promiseSlack)) {
		t.Errorf("file says %v, want %v", got, later.Add(promiseSlack))
	}

	restarted := &promiseFile{path: path}
	must(t, restarted.load(start.Add(time.Hour)))
	if got := restarted.promised("shop/www"); got.Before(later) {
		t.Errorf("after a restart promised = %v, want at least %v", got, later)
	}
	if got := restarted.promised("shop/api"); !got.IsZero() {
		t.Errorf("a restart with a record promised %v for an address it never confirmed", got)
	}
}

func TestPromisesUnreadableRecordCountsFromStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "promises.json")
	must(t, os.WriteFile(path, []byte("{not json"), 0o600))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &promiseFile{path: path}
	if err := p.load(start); err == nil {
		t.Error("an unreadable record read without error")
	}
	if got := p.promised("shop/www"); !got.Equal(start) {
		t.Errorf("promised = %v, want the start %v", got, start)
	}
}

func saved(t *testing.T, path string) map[string]time.Time {
	t.Helper()
	data, err := os.ReadFile(path)
	must(t, err)
	var m map[string]time.Time
	must(t, json.Unmarshal(data, &m))
	return m
}

func TestPromisesWithdrawal(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	open := func(at time.Time) *promiseFile {
		p := &promiseFile{path: filepath.Join(dir, "promises.json"), withdrawalsPath: filepath.Join(dir, "withdrawals.json")}
		t.Cleanup(p.waitExtensions)
		must(t, p.load(at))
		return p
	}
	p := open(start)
	if err := p.Promise(promiseAt(start, 3)); err == nil {
		t.Fatal("a start without a record promised before withdrawing from the current epochs")
	}
	must(t, p.withdrawUnknownPast(map[string]int64{"shop/www": 3}))
	if err := p.Promise(promiseAt(start, 3)); err == nil {
		t.Error("confirmed epoch 3, which the lost record may have withdrawn from")
	}
	heard := start.Add(time.Second)
	promiseSaved(t, p, promiseAt(heard, 4))

	if err := p.withdraw("shop/www", 4, start); err == nil {
		t.Error("withdrew on a decision made before the latest promise")
	}
	must(t, p.withdraw("shop/www", 4, heard))
	if err := p.Promise(promiseAt(heard.Add(time.Second), 4)); err == nil {
		t.Error("confirmed epoch 4 after withdrawing from it")
	}
	promiseSaved(t, p, promiseAt(heard.Add(time.Second), 5))

	restarted := open(start.Add(time.Hour))
	if got := restarted.withdrawnFrom("shop/www"); got != 4 {
		t.Errorf("after a restart withdrawn from epoch %d, want 4", got)
	}
	if err := restarted.Promise(promiseAt(heard.Add(2*time.Second), 4)); err == nil {
		t.Error("a restart confirmed an epoch it withdrew from")
	}
}

// TestPromisesExtendedAhead: a confirmation that the file covers by less
// than promiseSlack-promiseWriteEvery has the file extended beside it, so
// that the next ones, for a disk stall of up to that long, never wait.
func TestPromisesExtendedAhead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "promises.json")
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &promiseFile{path: path}
	t.Cleanup(p.waitExtensions)
	must(t, p.load(start))
	p.unknownPast = false
	heard := start.Add(time.Minute)
	promiseSaved(t, p, promiseAt(heard, 3))
	near := heard.Add(promiseWriteEvery + time.Millisecond)
	must(t, p.Promise(promiseAt(near, 3)))
	poll(t, "a confirmation a stall later covered, not waiting on the disk", func() bool {
		return p.covered(promiseAt(near.Add(promiseSlack-promiseWriteEvery), 3))
	})
	if got := saved(t, path)["shop/www"]; !got.Equal(near.Add(promiseSlack)) {
		t.Errorf("file says %v, want a slack past the confirmation, %v", got, near.Add(promiseSlack))
	}
}

// TestPromisesNeverWaitOnTheDisk: while the file is being written, slowly,
// promises it covers are made at once, those it does not are refused once
// promiseWaitAtMost is over, and one at an epoch being withdrawn from is
// refused at once.
func TestPromisesNeverWaitOnTheDisk(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &promiseFile{path: filepath.Join(dir, "promises.json"), withdrawalsPath: filepath.Join(dir, "withdrawals.json")}
	t.Cleanup(p.waitExtensions)
	must(t, p.load(start))
	must(t, p.withdrawUnknownPast(nil))
	heard := start.Add(time.Minute)
	promiseSaved(t, p, promiseAt(heard, 3))

	stalled := newStalledDisk()
	p.write = stalled.write
	near := heard.Add(promiseWriteEvery + time.Millisecond)
	must(t, p.Promise(promiseAt(near, 3))) // starts an extension, which stalls
	<-stalled.entered
	withdrawn := make(chan error, 1)
	go func() { withdrawn <- p.withdraw("shop/api", 7, time.Time{}) }()

	within(t, "a covered promise during a stalled write", func() { must(t, p.Promise(promiseAt(near, 3))) })
	within(t, "an uncovered promise during a stalled write", func() {
		if err := p.Promise(promiseAt(heard.Add(promiseSlack+time.Second), 3)); !errors.Is(err, errNotSavedYet) {
			t.Errorf("an uncovered promise: %v, want %v", err, errNotSavedYet)
		}
	})
	poll(t, "the withdrawal started", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.withdrawing["shop/api"] == 7
	})
	within(t, "a promise at an epoch being withdrawn from", func() {
		if err := p.Promise(map[string]heartbeat.Promise{"shop/api": {HeardAt: heard, Epoch: 7}}); !errors.Is(err, errWithdrawn) {
			t.Errorf("a promise at an epoch being withdrawn from: %v, want %v", err, errWithdrawn)
		}
	})
	close(stalled.release)
	must(t, <-withdrawn)
	if got := p.withdrawnFrom("shop/api"); got != 7 {
		t.Errorf("withdrawn from %d, want 7", got)
	}
}

// stalledDisk is a write hook that holds every write until released, and
// tells when the first one began.
type stalledDisk struct {
	entered, release chan struct{}
	once             sync.Once
}

func newStalledDisk() *stalledDisk {
	return &stalledDisk{entered: make(chan struct{}), release: make(chan struct{})}
}

func (d *stalledDisk) write(path string, v any) error {
	d.once.Do(func() { close(d.entered) })
	<-d.release
	return writeFileAtomic(path, v)
}

// within fails the test when f, which must not wait on the disk, has not
// returned in 10 s.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s waited on a stalled disk", what)
	}
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
