package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPromisesSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "promises.json")
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &promiseFile{path: path}
	must(t, p.load(start))
	if got := p.promised("shop/www"); !got.Equal(start) {
		t.Errorf("a node without a record promised at %v, want its start %v", got, start)
	}

	heard := start.Add(time.Minute)
	must(t, p.Promise(map[string]time.Time{"shop/www": heard}))
	if got := p.promised("shop/www"); !got.Equal(heard) {
		t.Errorf("promised = %v, want %v", got, heard)
	}
	// The file runs ahead by the slack, so that confirming every keepalive
	// does not write every keepalive.
	if got := saved(t, path)["shop/www"]; !got.Equal(heard.Add(promiseSlack)) {
		t.Errorf("file says %v, want %v", got, heard.Add(promiseSlack))
	}
	must(t, p.Promise(map[string]time.Time{"shop/www": heard.Add(promiseSlack / 2)}))
	if got := saved(t, path)["shop/www"]; !got.Equal(heard.Add(promiseSlack)) {
		t.Errorf("a promise the file covered rewrote it to %v", got)
	}
	later := heard.Add(2 * promiseSlack)
	must(t, p.Promise(map[string]time.Time{"shop/www": later}))
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
