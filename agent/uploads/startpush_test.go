package uploads

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStartedPushWithoutItsPassword: a push whose password cannot be read
// when it is used fails, and ends; rsync, still waiting on its password
// pipe, waited for good, and so did the push and the Syncer's stop.
func TestStartedPushWithoutItsPassword(t *testing.T) {
	p, password := startCatPush(t)
	if err := os.Remove(password); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() {
		err := p.send([]string{"a.jpg"})
		p.close()
		ended <- err
	}()
	select {
	case err := <-ended:
		if err == nil {
			t.Error("a push without its password succeeded")
		}
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Fatal("the push still waits 10 s after its password could not be read")
	}
}

// TestStartedPushEndsWithItsAgent: an rsync waiting for its password
// ends once the agent's end of the pipe closes, as it does when the agent
// dies: no rsync is left waiting for good. rsync's own copy of that end,
// were it passed on, would keep it waiting.
func TestStartedPushEndsWithItsAgent(t *testing.T) {
	p, _ := startCatPush(t)
	select {
	case <-p.exited:
		t.Fatalf("rsync ended before its agent's end closed: %v", p.err)
	case <-time.After(100 * time.Millisecond):
	}
	p.release()
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Fatal("rsync still waits 10 s after its agent's end of the pipe closed")
	}
}

// startCatPush starts a push whose rsync is cat, reading the password
// file it is given as rsync does, and returns it with the farm's password
// file.
func startCatPush(t *testing.T) (p *startedPush, password string) {
	t.Helper()
	dir := t.TempDir()
	password = filepath.Join(dir, "password")
	if err := os.WriteFile(password, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// cat waits on the pipe as rsync does, until this process writes into
	// its other end or closes it.
	r := &Rsync{PasswordFile: password, Command: func(ctx context.Context, _ string, args ...string) *exec.Cmd {
		for _, a := range args {
			if pipe, ok := strings.CutPrefix(a, "--password-file="); ok {
				return exec.CommandContext(ctx, "cat", pipe)
			}
		}
		return exec.CommandContext(ctx, "false")
	}}
	p, err := r.startPush(context.Background(), netip.MustParseAddr("192.0.2.1"), "m", dir)
	if err != nil {
		t.Fatal(err)
	}
	return p, password
}
