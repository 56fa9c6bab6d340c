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
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A push's rsync is started before its paths are known, and told them
// once they settle: most of a small push is spent before rsync reads a
// path. It starts, connects to the peer's daemon, greets it and asks for
// the module, and then waits on its --password-file, a pipe of its own
// (a FIFO) that the agent writes the farm's password into only when the
// push is used. The daemon logs a session ("rsync to <module>") once the
// password is in: until then, the peer does not count it among the
// sessions that may be writing into the directory, which its own local
// changes would wait for (Syncer.mayBeLocal).
//
// The daemon lets in a front when it asks for the module, so a push
// started ahead outlives a change of the peer's "hosts allow" by as long
// as it waits (readyFor, ready.go); rsync 3.5's daemon gives up on a
// session that sent no password within 60 s.

// startedPush is an rsync started towards a peer, waiting for the farm's
// password and then the paths to send from root.
type startedPush struct {
	root         string
	passwordFile string
	url          string
	// fifo is its --password-file; password is this end, opened for
	// reading and writing, so that neither rsync's open nor this one
	// blocks, and the pipe lives until rsync read it.
	fifo     string
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

// pushFIFOs numbers the password pipes of this process's pushes, from the
// time it started: a pipe left by an agent that died does not stand in
// the way of a restarted one's.
var pushFIFOs atomic.Int64

func init() { pushFIFOs.Store(time.Now().UnixNano()) }

// startPush starts a push to peer's module from root, which must exist
// until the push ended; the caller removes it. Its password pipe is made
// beside the password file, in the agent's private state directory.
func (r *Rsync) startPush(ctx context.Context, peer netip.Addr, module, root string) (*startedPush, error) {
	if r.PasswordFile == "" {
		return nil, errors.New("starting a push: no password file")
	}
	p := &startedPush{
		root: root, passwordFile: r.PasswordFile, url: r.url(peer, module),
		fifo:   filepath.Join(filepath.Dir(r.PasswordFile), fmt.Sprintf("push-%d.password", pushFIFOs.Add(1))),
		exited: make(chan struct{}),
	}
	if err := unix.Mkfifo(p.fifo, 0o600); err != nil {
		return nil, fmt.Errorf("making the push's password pipe %s: %w", p.fifo, err)
	}
	password, err := os.OpenFile(p.fifo, os.O_RDWR, 0)
	if err != nil {
		_ = os.Remove(p.fifo)
		return nil, fmt.Errorf("opening the push's password pipe %s: %w", p.fifo, err)
	}
	p.password = password
	p.cmd = command(ctx, r.Command, r.Binary, r.pushArgs(peer, module, root, p.fifo)...)
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
	var list bytes.Buffer
	for _, path := range paths {
		list.WriteString(path)
		list.WriteByte(0)
	}
	// A write that fails means rsync ended: its own error says why.
	_, _ = p.stdin.Write(list.Bytes())
	_ = p.stdin.Close()
	<-p.exited
	return failure(p.url, p.err, p.stderr.String())
}

// unlock writes the password's first line into the pipe, in one write:
// rsync reads it in one read.
func (p *startedPush) unlock() error {
	data, err := os.ReadFile(p.passwordFile)
	if err != nil {
		return fmt.Errorf("reading the farm's password: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	if _, err := p.password.WriteString(line + "\n"); err != nil {
		return fmt.Errorf("writing the push's password pipe %s: %w", p.fifo, err)
	}
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

// close ends the push, and removes its pipe. A push never used is sent no
// path: killed before its password, rsync would leave "auth failed" in
// the peer's log.
func (p *startedPush) close() {
	if !p.sent {
		_ = p.send(nil)
	}
	<-p.exited
	p.release()
}

func (p *startedPush) release() {
	_ = p.password.Close()
	_ = os.Remove(p.fifo)
}

// releasePushPipes ends what an agent that died left waiting in dir, the
// farm's state directory: a push it started that had not yet opened its
// password pipe blocks in open(2) for good once no writer is left (a
// container's restart kills it; a bare process's does not). Each pipe is
// opened for writing and closed, so that a reader waiting gets end of
// file, and rsync exits; then it is removed. Called before this process
// starts pushes of its own there.
func releasePushPipes(dir string) {
	pipes, _ := filepath.Glob(filepath.Join(dir, "push-*.password"))
	for _, pipe := range pipes {
		if fd, err := unix.Open(pipe, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
			_ = unix.Close(fd)
		}
		_ = os.Remove(pipe)
	}
}
