package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/webfarm/webfarm/agent/heartbeat"
)

// promiseAt is a confirmation of shop/www's owner at epoch, heard at.
func promiseAt(at time.Time, epoch int64) map[string]heartbeat.Promise {
	return map[string]heartbeat.Promise{"shop/www": {HeardAt: at, Epoch: epoch}}
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
	must(t, p.Promise(promiseAt(heard, 3)))
	if got := p.promised("shop/www"); !got.Equal(heard) {
		t.Errorf("promised = %v, want %v", got, heard)
	}
	// The file runs ahead by the slack, so that confirming every keepalive
	// does not write every keepalive.
	if got := saved(t, path)["shop/www"]; !got.Equal(heard.Add(promiseSlack)) {
		t.Errorf("file says %v, want %v", got, heard.Add(promiseSlack))
	}
	must(t, p.Promise(promiseAt(heard.Add(promiseSlack/2), 3)))
	if got := saved(t, path)["shop/www"]; !got.Equal(heard.Add(promiseSlack)) {
		t.Errorf("a promise the file covered rewrote it to %v", got)
	}
	later := heard.Add(2 * promiseSlack)
	must(t, p.Promise(promiseAt(later, 3)))
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
	must(t, p.Promise(promiseAt(heard, 4)))

	if err := p.withdraw("shop/www", 4, start); err == nil {
		t.Error("withdrew on a decision made before the latest promise")
	}
	must(t, p.withdraw("shop/www", 4, heard))
	if err := p.Promise(promiseAt(heard.Add(time.Second), 4)); err == nil {
		t.Error("confirmed epoch 4 after withdrawing from it")
	}
	must(t, p.Promise(promiseAt(heard.Add(time.Second), 5)))

	restarted := open(start.Add(time.Hour))
	if got := restarted.withdrawnFrom("shop/www"); got != 4 {
		t.Errorf("after a restart withdrawn from epoch %d, want 4", got)
	}
	if err := restarted.Promise(promiseAt(heard.Add(2*time.Second), 4)); err == nil {
		t.Error("a restart confirmed an epoch it withdrew from")
	}
}

// TestPromisesExtendedAhead: a confirmation within half the slack of what
// the file covers has the file extended beside it, so that the next ones
// never wait on the disk.
func TestPromisesExtendedAhead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "promises.json")
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &promiseFile{path: path}
	t.Cleanup(p.waitExtensions)
	must(t, p.load(start))
	p.unknownPast = false
	heard := start.Add(time.Minute)
	must(t, p.Promise(promiseAt(heard, 3)))
	near := heard.Add(promiseSlack/2 + time.Millisecond)
	must(t, p.Promise(promiseAt(near, 3)))
	poll(t, "a confirmation half a slack later covered, not waiting on the disk", func() bool {
		return p.covered(promiseAt(near.Add(promiseSlack/2), 3))
	})
	if got := saved(t, path)["shop/www"]; !got.Equal(near.Add(promiseSlack)) {
		t.Errorf("file says %v, want a slack past the confirmation, %v", got, near.Add(promiseSlack))
	}
}
