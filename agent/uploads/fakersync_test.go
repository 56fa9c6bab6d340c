package uploads

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// fakeRsync stands in for rsync in tests without peers: every command
// succeeds. A push given paths logs them ("begin <url> <paths>", then
// "end <url>"); one towards a gated address waits, once given paths, for
// release. A push started ahead and retired is given none, and logs
// nothing.
type fakeRsync struct {
	log, gate string
	gated     string
	// probesHang makes every listing (Probe, LastInStep) hang, as
	// towards a peer that does not answer.
	probesHang bool
}

// fakeScript is the fake: $1 the log, $2 the destination, $3 the gate
// (a FIFO) or empty.
const fakeScript = `paths=$(tr '\000' ' ')
[ -z "$paths" ] && exit 0
echo "begin $2 $paths" >> "$1"
[ -n "$3" ] && read line < "$3"
echo "end $2" >> "$1"`

// newFakeRsync fakes rsync; pushes to an address containing gated wait
// for release (none when empty).
func newFakeRsync(t *testing.T, gated string) *fakeRsync {
	t.Helper()
	dir := t.TempDir()
	f := &fakeRsync{log: filepath.Join(dir, "pushes"), gate: filepath.Join(dir, "gate"), gated: gated}
	if err := syscall.Mkfifo(f.gate, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// install makes s run the fake, with a password file of its own.
func (f *fakeRsync) install(t *testing.T, s *Syncer) {
	t.Helper()
	s.Rsync.Command = f.command
	s.Rsync.PasswordFile = filepath.Join(filepath.Dir(f.log), "password")
	if err := os.WriteFile(s.Rsync.PasswordFile, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeRsync) command(ctx context.Context, _ string, args ...string) *exec.Cmd {
	if f.probesHang && slices.Contains(args, "--list-only") {
		return exec.CommandContext(ctx, "sleep", "60")
	}
	dst, gate := args[len(args)-1], ""
	if f.gated != "" && strings.Contains(dst, f.gated) {
		gate = f.gate
	}
	return exec.CommandContext(ctx, "sh", "-c", fakeScript, "fake", f.log, dst, gate)
}

// release lets one gated push given paths end.
func (f *fakeRsync) release(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(f.gate, []byte("go\n"), 0); err != nil {
		t.Fatal(err)
	}
}

// pushes counts the pushes given paths towards an address containing to,
// and the most that ran at once.
func (f *fakeRsync) pushes(to string) (n, most int) {
	data, _ := os.ReadFile(f.log)
	running := 0
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || !strings.Contains(fields[1], to) {
			continue
		}
		switch fields[0] {
		case "begin":
			n++
			running++
			most = max(most, running)
		case "end":
			running--
		}
	}
	return n, most
}
