package uploads

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// MetaDir is the agent's own directory inside every synced directory. It
// must stay inside: the rsync daemon is chrooted to the directory, and
// what it receives must be on the directory's filesystem, for the rename
// that puts a file in place to be atomic. A web server that serves a
// synced directory should deny it (tombstones name deleted paths). The
// watcher ignores it all; only deleted (the tombstones) is synced.
const MetaDir = ".webfarm"

// Paths below MetaDir.
const (
	tmpDir      = MetaDir + "/tmp"
	replacedDir = MetaDir + "/replaced"
	deletedDir  = MetaDir + "/deleted"
	// inDir holds what peers push, in a directory per sender, and
	// pulledDir what a catch-up pulls, until the agent puts each version
	// in place (land.go).
	inDir     = MetaDir + "/in"
	pulledDir = MetaDir + "/pulled"
	// pushDir holds the snapshots pushes read from, one per peer
	// (snapshot.go, ready.go).
	pushDir = MetaDir + "/push"
	// inStepFile is this front's own (collect.go): never synced.
	inStepFile = MetaDir + "/in-step"
)

// transfers numbers this process's transfers, from the time it started,
// so that a restarted agent does not name what it sets aside as a
// transfer before the restart did.
var transfers atomic.Int64

func init() { transfers.Store(time.Now().UnixNano()) }

// Rsync runs the rsync client of one front towards the others' daemons.
type Rsync struct {
	// Binary is rsync; "rsync" from PATH when empty.
	Binary string
	// Command runs it; exec.CommandContext when nil.
	Command Runner
	// Start starts a transfer's command; its Start method when nil. Tests
	// start it from a thread inside a front's network namespace, as the
	// agent's own threads are, rather than through one more program.
	Start func(*exec.Cmd) error
	// Self is this front's node name: peers keep what it replaces in a
	// directory named after it.
	Self string
	// PasswordFile holds the farm's password (mode 0600).
	PasswordFile string
	// Port is the peers' daemon port.
	Port int
	// BwLimitKiBps caps each transfer; 0 does not.
	BwLimitKiBps int
	// Timeout bounds a stalled transfer (rsync's --timeout).
	Timeout time.Duration
}

// common are the options of every transfer: recursive where asked, links
// as links (never one that points out of the tree), times and modes kept,
// the agent's own directories left out but for the tombstones.
// passwordFile holds the farm's password.
func (r *Rsync) common(passwordFile string) []string {
	args := []string{
		"-lptD", "--safe-links",
		"--exclude=/" + tmpDir + "/", "--exclude=/" + replacedDir + "/", "--exclude=/" + inDir + "/",
		"--exclude=/" + pulledDir + "/", "--exclude=/" + pushDir + "/", "--exclude=/" + inStepFile,
		"--password-file=" + passwordFile,
		// rsync's protocol writes small messages and waits for the
		// answers: with Nagle's algorithm on, most exchanges wait for a
		// delayed ACK (40 ms). A one-file push took 175 ms, 50 ms with
		// TCP_NODELAY on both ends (the daemon's "socket options").
		"--sockopts=TCP_NODELAY",
		"--contimeout=5",
		"--timeout=" + strconv.Itoa(max(1, int(r.Timeout/time.Second))),
	}
	if r.BwLimitKiBps > 0 {
		args = append(args, "--bwlimit="+strconv.Itoa(r.BwLimitKiBps))
	}
	return args
}

// staged are the options of a transfer into dest, a staging directory
// below root, rather than into the tree: rsync writes each file into the
// agent's temporary directory and renames it there, reading the tree's
// version of it (compare-dest) for its delta. Its rename never lands on a
// path of the tree, where it would replace, unseen, a version written
// there between its backup and its rename: the agent puts each version in
// place, and sets what it displaces aside, in one step. The paths are
// absolute, root "/" on a peer's daemon, chrooted in the directory: rsync
// 3.5 refuses a temporary directory reached through "..".
func staged(root string) []string {
	return []string{"--temp-dir=" + filepath.Join(root, tmpDir), "--compare-dest=" + root}
}

// stagingFor is where a push from sender lands on its peers.
func stagingFor(sender string) string { return inDir + "/" + sender }

func (r *Rsync) url(peer netip.Addr, module string) string {
	return fmt.Sprintf("rsync://%s@%s/%s/", AuthUser, netip.AddrPortFrom(peer, uint16(r.Port)), module)
}

// pushArgs sends the paths read from stdin, relative to root, into this
// front's staging directory on the peer: each one that exists is sent
// whole (-I: whatever its size and time, the receiver judges); one that
// does not is skipped, its deletion travels as its tombstone. root is
// named, not the working directory: were it removed before rsync reads
// it, rsync fails, where "." would be an empty directory.
func (r *Rsync) pushArgs(peer netip.Addr, module, root, passwordFile string) []string {
	dest := stagingFor(r.Self)
	args := append(r.common(passwordFile), staged("/")...)
	return append(args, "-I", "--files-from=-", "--from0", "--ignore-missing-args", "--force",
		root, r.url(peer, module)+dest+"/")
}

// Push sends paths, relative to root, to peer's module.
func (r *Rsync) Push(ctx context.Context, root string, peer netip.Addr, module string, paths []string) error {
	p, err := r.startPush(ctx, peer, module, root)
	if err != nil {
		return err
	}
	defer p.close()
	return p.send(paths)
}

// Unsent lists what a push of the whole tree would send peer, by a dry
// run: what it lacks, or holds with another size or time, and the
// directories above them.
func (r *Rsync) Unsent(ctx context.Context, root string, peer netip.Addr, module string) ([]string, error) {
	out, err := r.run(ctx, root, nil, append(r.common(r.PasswordFile), "-r", "--dry-run", "--out-format=%n", ".", r.url(peer, module)))
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, line := range strings.Split(out, "\n") {
		if line != "" && line != "./" {
			paths = append(paths, strings.TrimSuffix(unescapeName(line), "/"))
		}
	}
	return paths, nil
}

// Pulled is a path a pull wrote: the size its sender listed, and whether
// content came (rsync's item ">": received).
type Pulled struct {
	Path     string
	Size     int64
	Received bool
}

// Pull fetches from peer's module what differs (only paths, when given),
// with m's modes, into pulledDir below root, and returns what it wrote
// there. It compares content and times only: a file that differs in owner
// or mode alone would be copied whole into the staging directory (every
// file of a front whose files predate the agent's owner); the catch-up
// re-owns those in place (Syncer.reown).
func (r *Rsync) Pull(ctx context.Context, root string, peer Peer, m Module, paths []string) ([]Pulled, error) {
	// The size listed (%l) tells a file that came mixed (Syncer.pull).
	args := append(r.common(r.PasswordFile), staged(root)...)
	args = append(args, "--no-perms", modes(m), "--out-format=%o %i %l %n")
	var stdin *bytes.Buffer
	if paths == nil {
		args = append(args, "-r")
	} else {
		stdin = nulSeparated(paths)
		args = append(args, "--files-from=-", "--from0")
	}
	out, err := r.run(ctx, root, stdin, append(args, r.url(peer.Addr, m.Name), pulledDir+"/"))
	var got []Pulled
	for _, line := range strings.Split(out, "\n") {
		if p, ok := pulledLine(line); ok {
			got = append(got, p)
		}
	}
	return got, err
}

// modes is the option that gives what rsync writes m's modes.
func modes(m Module) string {
	return fmt.Sprintf("--chmod=D%04o,F%04o", m.DirMode.Perm(), m.FileMode.Perm())
}

// pulledLine reads a line of Pull's output, "recv %i %l %n".
func pulledLine(line string) (Pulled, bool) {
	p, ok := strings.CutPrefix(line, "recv ")
	if !ok || len(p) < 13 || p[11] != ' ' || !isItem(p[:11]) {
		return Pulled{}, false
	}
	length, name, ok := strings.Cut(p[12:], " ")
	if !ok || name == "./" {
		return Pulled{}, false
	}
	size, err := strconv.ParseInt(length, 10, 64)
	if err != nil {
		return Pulled{}, false
	}
	return Pulled{Path: strings.TrimSuffix(unescapeName(name), "/"), Size: size, Received: p[0] == '>'}, true
}

// Differences lists what a pull from peer's module m would change here,
// deletions included, other than directories' own times: empty when root
// matches. The peer's files are compared as they are to be here, with
// m's owner and modes: compared as they are there, a peer's that have
// others (there before its agent) matched nothing for good, and the front
// comparing never caught up (TestNodeUploadsCatchUpReownsWithoutSending);
// a file here that differs in owner or mode alone is to be re-owned
// (attributesOnly).
func (r *Rsync) Differences(ctx context.Context, root string, peer Peer, m Module) ([]string, error) {
	args := append(r.common(r.PasswordFile), fmt.Sprintf("--chown=%d:%d", m.UID, m.GID), modes(m))
	args = append(args, "-r", "--dry-run", "--delete", "--itemize-changes", r.url(peer.Addr, m.Name), ".")
	out, err := r.run(ctx, root, nil, args)
	if err != nil {
		return nil, err
	}
	var diff []string
	for _, line := range strings.Split(out, "\n") {
		if line == "" || strings.HasPrefix(line, ".d") {
			continue
		}
		diff = append(diff, line)
	}
	return diff, nil
}

// attributesOnly are the files of diff (Differences' lines) that differ
// in owner or mode alone.
func attributesOnly(diff []string) []string {
	var paths []string
	for _, line := range diff {
		if path, ok := attributesOnlyLine(line); ok {
			paths = append(paths, path)
		}
	}
	return paths
}

// attributesOnlyLine reads a line of Differences ("%i %n": eleven
// characters of changes, a space, the name) that tells a file differing
// in owner or mode alone: "." (nothing to send), a file, no checksum,
// size or time changed.
func attributesOnlyLine(line string) (string, bool) {
	if len(line) > 12 && strings.HasPrefix(line, ".f") && line[2:5] == "..." && line[11] == ' ' {
		return unescapeName(line[12:]), true
	}
	return "", false
}

// Lacks lists what peer lacks of root: what a pull with deletions would
// delete here.
func (r *Rsync) Lacks(ctx context.Context, root string, peer Peer, m Module) ([]string, error) {
	diff, err := r.Differences(ctx, root, peer, m)
	var lacks []string
	for _, line := range diff {
		// "%i %n": eleven characters of changes, a space, the name.
		if strings.HasPrefix(line, "*deleting") && len(line) > 12 {
			lacks = append(lacks, strings.TrimSuffix(unescapeName(line[12:]), "/"))
		}
	}
	return lacks, err
}

// Probe tells whether peer's daemon lets this front into module: it lets
// in only the fronts it syncs with.
func (r *Rsync) Probe(ctx context.Context, root string, peer netip.Addr, module string) error {
	_, err := r.list(ctx, root, peer, module, MetaDir)
	return err
}

// LastInStep reads when peer was last in step with all its peers (its
// in-step record, collect.go), to the second; zero when it has none.
func (r *Rsync) LastInStep(ctx context.Context, root string, peer netip.Addr, module string) (time.Time, error) {
	out, err := r.list(ctx, root, peer, module, inStepFile)
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 23 {
		// rsync's "some files were not transferred": no such file.
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return listedTime(out)
}

// list lists path in peer's module.
func (r *Rsync) list(ctx context.Context, root string, peer netip.Addr, module, path string) (string, error) {
	return r.run(ctx, root, nil, []string{"--list-only", "--password-file=" + r.PasswordFile, "--contimeout=5",
		"--timeout=" + strconv.Itoa(max(1, int(r.Timeout/time.Second))), r.url(peer, module) + path})
}

// listedTime is the time of the one file a --list-only listed
// ("-rw-------  0 2026/12/02 07:15:03 in-step"), which rsync prints in
// this host's time zone.
func listedTime(out string) (time.Time, error) {
	f := strings.Fields(out)
	if len(f) < 5 {
		return time.Time{}, fmt.Errorf("reading the listing %q: too few fields", strings.TrimSpace(out))
	}
	t, err := time.ParseInLocation("2006/01/02 15:04:05", f[2]+" "+f[3], time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the listing %q: %w", strings.TrimSpace(out), err)
	}
	return t, nil
}

func (r *Rsync) run(ctx context.Context, dir string, stdin *bytes.Buffer, args []string) (string, error) {
	cmd := command(ctx, r.Command, r.Binary, args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := r.start(cmd)
	if err == nil {
		err = cmd.Wait()
	}
	return out.String(), failure(args[len(args)-1], err, errOut.String())
}

// start starts cmd, through Start when set.
func (r *Rsync) start(cmd *exec.Cmd) error {
	if r.Start != nil {
		return r.Start(cmd)
	}
	return cmd.Start()
}

// failure is how an rsync towards target that ended with err failed,
// with the cause it printed on stderr; nil when it did not (exit code
// 24 included, vanished).
func failure(target string, err error, stderr string) error {
	if err == nil || vanished(err) {
		return nil
	}
	return fmt.Errorf("rsync %s: %w: %s", target, err, firstLine(stderr))
}

// vanished tells rsync's exit code 24: some source files vanished while
// it ran. Their removal is a change of its own, which the watcher reports.
func vanished(err error) bool {
	var exit *exec.ExitError
	return errors.As(err, &exit) && exit.ExitCode() == 24
}

// firstLine is rsync's first complaint: the cause ("@ERROR: auth failed
// on module"), where the last is its exit code.
func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
