package uploads

import (
	"os"
	"os/exec"
	"path/filepath"
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
