package uploads

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
)

// A push's rsync is started before its paths are known, and told them
// once they settle: most of a small push is spent before rsync reads a
// path. It starts, connects to the peer's daemon, greets it and asks for
// the module, and then waits on its --password-file, /dev/fd/3, the read
// end of a pipe that the agent writes the farm's password into only when
// the push is used. The daemon logs a session ("rsync to <module>") once
// the password is in: until then, the peer does not count it among the
// sessions that may be writing into the directory, which its own local
// changes would wait for (Syncer.mayBeLocal).
//
// A pipe, not a FIFO in the state directory: making and removing one
// took a millisecond of CPU on an ext4 root, for every push, and an agent
// that dies closes its end, so that rsync reads no password and ends.
// Opening a pipe through /dev/fd does not wait for a writer, as a FIFO's
// open does.
//
// The daemon lets in a front when it asks for the module, so a push
// started ahead outlives a change of the peer's "hosts allow" by as long
// as it waits (readyFor, ready.go); rsync 3.5's daemon gives up on a
// session that sent no password within 60 s.

// pushPasswordFile is where a push's rsync reads its password: the pipe
// passed as its first extra file.
const pushPasswordFile = "/dev/fd/3"

// startedPush is an rsync started towards a peer, waiting for the farm's
// password and then the paths to send from root.
type startedPush struct {
	root         string
	passwordFile string
	url          string
	// password is the pipe's end rsync reads its password from; nil once
	// written, or closed unwritten.
	password *os.File
	stdin    io.WriteCloser
	stderr   bytes.Buffer
	cmd      *exec.Cmd
	// sent is set once it was given its paths.
	sent bool
	// exited is closed once rsync exited, with err.
	exited chan struct{}
	err    error
}

// startPush starts a push to peer's module from root, which must exist
// until the push ended.
func (r *Rsync) startPush(ctx context.Context, peer netip.Addr, module, root string) (*startedPush, error) {
	if r.PasswordFile == "" {
		return nil, errors.New("starting a push: no password file")
	}
	p := &startedPush{root: root, passwordFile: r.PasswordFile, url: r.url(peer, module), exited: make(chan struct{})}
	readEnd, writeEnd, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("making the push's password pipe: %w", err)
	}
	// Only rsync holds the read end: the agent's is closed once rsync
	// started.
	defer readEnd.Close()
	p.password = writeEnd
	p.cmd = command(ctx, r.Command, r.Binary, r.pushArgs(peer, module, root, pushPasswordFile)...)
	p.cmd.ExtraFiles = []*os.File{readEnd}
	p.cmd.Stderr = &p.stderr
	if p.stdin, err = p.cmd.StdinPipe(); err == nil {
		err = r.start(p.cmd)
	}
	if err != nil {
		p.release()
		return nil, fmt.Errorf("starting rsync towards %s: %w", p.url, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// send gives rsync the farm's password, read now (it may have changed
// since the push started), then paths, and waits for it to end.
func (p *startedPush) send(paths []string) error {
	p.sent = true
	if err := p.unlock(); err != nil {
		// Without its password, rsync would wait on the pipe for good.
		_ = p.cmd.Process.Kill()
		_ = p.stdin.Close()
		return err
	}
	// A write that fails means rsync ended: its own error says why.
	_, _ = p.stdin.Write(nulSeparated(paths).Bytes())
	_ = p.stdin.Close()
	<-p.exited
	return failure(p.url, p.err, p.stderr.String())
}

// nulSeparated is paths as rsync's --files-from reads them with --from0.
func nulSeparated(paths []string) *bytes.Buffer {
	var list bytes.Buffer
	for _, path := range paths {
		list.WriteString(path)
		list.WriteByte(0)
	}
	return &list
}

// unlock writes the password's first line into the pipe, in one write
// (rsync reads it in one read), and closes it.
func (p *startedPush) unlock() error {
	data, err := os.ReadFile(p.passwordFile)
	if err != nil {
		return fmt.Errorf("reading the farm's password: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	// rsync holds the read end until it exits: a write that fails means
	// it ended, and its own error says why.
	_, _ = p.password.WriteString(line + "\n")
	p.release()
	return nil
}

// ended tells whether rsync already ended: one that ended before it was
// used cannot be.
func (p *startedPush) ended() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// close ends the push. A push never used is sent no path: its pipe
// closed unwritten, rsync would leave "auth failed" in the peer's log.
func (p *startedPush) close() {
	if !p.sent {
		_ = p.send(nil)
	}
	<-p.exited
	p.release()
}

// release closes the agent's end of the password pipe, if still open.
func (p *startedPush) release() {
	if p.password != nil {
		_ = p.password.Close()
		p.password = nil
	}
}
