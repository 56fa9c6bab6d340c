package agent

import (
	"os"
	"path/filepath"
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

func TestRenewalFileSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lease-renewed.json")
	renewed := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	r := &renewalFile{path: path}
	must(t, r.save(renewed, time.Second))
	must(t, r.save(renewed.Add(100*time.Millisecond), time.Second)) // too soon: not written

	restarted := &renewalFile{path: path}
	if got := restarted.load(renewed.Add(time.Second)); !got.Equal(renewed) {
		t.Errorf("after restart: %v, want %v", got, renewed)
	}
	if got := restarted.load(renewed.Add(-time.Second)); !got.IsZero() {
		t.Errorf("a renewal in the future (clock set back) was trusted: %v", got)
	}
}
