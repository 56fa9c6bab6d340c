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

	"golang.org/x/sys/unix"
)

// TestReleasePushPipes: an rsync that an agent which died left blocked in
// the open of its password pipe (no writer left) ends once the next agent
// releases the farm's pipes; the pipes go.
func TestReleasePushPipes(t *testing.T) {
	dir := t.TempDir()
	pipe := filepath.Join(dir, "push-1.password")
	if err := unix.Mkfifo(pipe, 0o600); err != nil {
		t.Fatal(err)
	}
	reader := exec.Command("cat", pipe)
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() { ended <- reader.Wait() }()
	select {
	case err := <-ended:
		t.Fatalf("the reader ended before the release: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	releasePushPipes(dir)
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		_ = reader.Process.Kill()
		t.Fatal("the reader still waits after the release")
	}
	if _, err := os.Lstat(pipe); !os.IsNotExist(err) {
		t.Errorf("the pipe is still there: %v", err)
	}
}

// TestStartedPushWithoutItsPassword: a push whose password cannot be read
// when it is used fails, and ends; rsync, still waiting on its password
// pipe, waited for good, and so did the push and the Syncer's stop.
func TestStartedPushWithoutItsPassword(t *testing.T) {
	dir := t.TempDir()
	password := filepath.Join(dir, "password")
	if err := os.WriteFile(password, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// cat waits on the pipe as rsync does: this process holds its other
	// end, and writes nothing.
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
