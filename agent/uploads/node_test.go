package uploads

import (
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"
)

// routedSyncer is a Router for a daemon whose state is in a fresh
// directory, and the Syncer, not running, of its module "m".
func routedSyncer(t *testing.T) (DaemonConfig, *Router, *Syncer) {
	t.Helper()
	cfg := DaemonConfig{StateDir: t.TempDir()}
	r := NewRouter(cfg)
	s := &Syncer{Module: Module{Name: "m"}}
	s.init()
	r.Set("m", s)
	return cfg, r, s
}

// TestRouterFollowsTheLog: the end of a session, logged by the daemon,
// wakes a Syncer whose local change waits for it, with no step of its
// own to read the log. Read only at each step, a session that ended held
// the change until the next look, a quiet period later.
func TestRouterFollowsTheLog(t *testing.T) {
	cfg, r, s := routedSyncer(t)
	stop, err := r.Follow()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// A process that exists: the Router drops the sessions of those
	// gone.
	session := os.Getpid()
	s.mu.Lock()
	s.waiting["up.jpg"] = wait{first: time.Now(), since: time.Now(), sessions: []int{session}}
	s.mu.Unlock()
	log, err := os.OpenFile(cfg.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	logLine := func(text string) {
		t.Helper()
		if _, err := fmt.Fprintf(log, "2026/12/03 10:16:56 [%d] %s\n", session, text); err != nil {
			t.Fatal(err)
		}
	}
	writing := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.writing[session]
	}

	logLine("rsync to m/ from webfarm@UNDETERMINED (10.98.0.1)")
	eventually(t, 5*time.Second, "the session seen writing", writing)
	// Its start wakes nothing: the path waits on.
	select {
	case <-s.wake:
		t.Fatal("the Syncer was woken by a session that began")
	default:
	}
	logLine("sent 54 bytes  received 142 bytes  total size 12")
	eventually(t, 5*time.Second, "the Syncer woken", func() bool {
		select {
		case <-s.wake:
			return true
		default:
			return false
		}
	})
	if writing() {
		t.Error("the session still counted as writing after its last line")
	}
}

// TestRouterTellsStagedSessions: a session that writes into a staging
// directory hands its transfers on with that directory, and is counted
// as staging, not as writing into the tree: nothing it writes lands in
// the tree before the agent files its transfer, and local changes do not
// wait for it.
func TestRouterTellsStagedSessions(t *testing.T) {
	cfg, r, s := routedSyncer(t)
	session := os.Getpid()
	lines := fmt.Sprintf("2026/12/04 10:16:56 [%d] rsync to m/.webfarm/in/front2/ from webfarm@UNDETERMINED (10.98.0.2)\n"+
		"2026/12/04 10:16:56 [%d] recv m 10.98.0.2 >f+++++++++ a/b.jpg\n", session, session)
	if err := os.WriteFile(cfg.logPath(), []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	r.Drain()
	s.mu.Lock()
	defer s.mu.Unlock()
	want := Transfer{Op: OpRecv, Module: "m", Peer: netip.MustParseAddr("10.98.0.2"), Path: "a/b.jpg", Dest: ".webfarm/in/front2", Session: session}
	if len(s.inbox) != 1 || s.inbox[0] != want {
		t.Errorf("inbox %+v, want %+v", s.inbox, want)
	}
	if len(s.writing) != 0 || !s.staging[session] {
		t.Errorf("writing into the tree %v, staging %v; want the session staging only", s.writing, s.staging)
	}
}
