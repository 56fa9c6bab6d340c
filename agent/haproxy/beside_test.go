package haproxy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestPrepareBeside(t *testing.T) {
	installed := []byte("global\n    master-worker\n# the agent's\n")
	for _, tc := range []struct {
		name      string
		cfg       []byte // in Dir before; nil: none
		wantAgent bool   // the agent's configuration stays
	}{
		{name: "first start: the idle configuration"},
		{name: "restart: the agent's configuration stays", cfg: installed, wantAgent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Process{Dir: t.TempDir(), Beside: true}
			if tc.cfg != nil {
				if err := os.WriteFile(p.path(ConfigFile), tc.cfg, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(p.path(ServerStateFile), []byte("1\n# stale\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := p.prepareBeside(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(p.path(ConfigFile))
			if err != nil {
				t.Fatal(err)
			}
			want := p.idleConfig()
			if tc.wantAgent {
				want = installed
			}
			if string(got) != string(want) {
				t.Errorf("haproxy.cfg is\n%s\nwant\n%s", got, want)
			}
			if _, err := os.Stat(p.path(ServerStateFile)); !os.IsNotExist(err) {
				t.Errorf("the old server state is still there: %v", err)
			}
			if left, _ := filepath.Glob(p.path("*.idle")); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

// TestIdleConfigValid has HAProxy check the configuration a HAProxy beside
// the agent runs when no farm is served.
func TestIdleConfigValid(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy is not installed")
	}
	p := &Process{Dir: t.TempDir(), Beside: true}
	if err := os.WriteFile(p.path(ConfigFile), p.idleConfig(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := validate(context.Background(), "haproxy", p.path(ConfigFile)); err != nil {
		t.Fatal(err)
	}
}

// TestReloadAlertsSayWhereTheyAre: a failed reload's error gives the
// master's alerts from master.log when the agent started HAProxy, and
// points at HAProxy's own container when it runs beside: there, no
// master.log exists, and one left from before would be stale.
func TestReloadAlertsSayWhereTheyAre(t *testing.T) {
	log := "[NOTICE]   (7) : Reloading HAProxy\n" +
		"[ALERT]    (7) : config : parsing [haproxy.cfg:4] : unknown keyword 'bogus' in 'global' section\n" +
		"[ALERT]    (7) : config : Error(s) found in configuration file : haproxy.cfg\n"
	for _, tc := range []struct {
		name   string
		beside bool
		want   string
	}{
		{"the agent's child", false, "config : parsing [haproxy.cfg:4] : unknown keyword 'bogus' in 'global' section"},
		{"beside the agent", true, besideAlerts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Process{Dir: t.TempDir(), Beside: tc.beside}
			if err := os.WriteFile(p.path(MasterLogFile), []byte(log), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := p.masterLogSince(0); got != tc.want {
				t.Errorf("masterLogSince = %q, want %q", got, tc.want)
			}
		})
	}
}
