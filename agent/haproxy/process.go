package haproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// Files in Process.Dir.
const (
	ConfigFile        = "haproxy.cfg"
	PIDFile           = "haproxy.pid"  // the master's pid
	MasterSocketFile  = "master.sock"  // master CLI: reload, show proc
	RuntimeSocketFile = "runtime.sock" // the workers' admin stats socket
	MasterLogFile     = "master.log"   // what the master printed since it started: its reloads' alerts
	ServerStateFile   = "server-state" // the servers' states, saved for the next worker at each reload
	LogSocketFile     = "log.sock"     // the access log, read by the agent (agent/accesslog)
	errorsDir         = "errors"
)

// Timeouts of the steps that wait for HAProxy, when ctx has no deadline.
const (
	startTimeout  = 10 * time.Second
	reloadTimeout = 10 * time.Second
	stopTimeout   = 10 * time.Second
	pollInterval  = 20 * time.Millisecond
)

// Process is the node's HAProxy, run in master-worker mode in a session of
// its own so that it outlives an agent restart; a new Process on the same
// Dir adopts it (pid file and master socket). Its methods are safe for
// concurrent use.
//
// With Beside, HAProxy is not the agent's to start or end: it runs beside
// the agent (its own container, see ExecBeside), which outlives the agent's
// container, and the Process only installs, validates and reloads.
type Process struct {
	// Binary is the haproxy executable; default "haproxy" from $PATH.
	Binary string
	// Dir holds haproxy.cfg, errors/, the pid file, the master and runtime
	// sockets and master.log. Its path must be short (unix sockets) and
	// plain: letters, digits, '.', '_', '-' and '/'.
	Dir string
	// Beside says that HAProxy's master is started and ended by someone
	// else, with ExecBeside on the same Dir: Apply waits for its master
	// socket instead of starting it, and Stop waits for it to end.
	Beside bool

	mu sync.Mutex // serializes Apply and Stop
}

// RuntimeSocket is the admin stats socket that Stats and SetDrain use; pass
// it as Config.RuntimeSocket.
func (p *Process) RuntimeSocket() string { return filepath.Join(p.Dir, RuntimeSocketFile) }

// LogSocket is where HAProxy sends its access log when Config.LogSocket
// names it; the agent binds it.
func (p *Process) LogSocket() string { return filepath.Join(p.Dir, LogSocketFile) }

func (p *Process) path(name string) string { return filepath.Join(p.Dir, name) }

func (p *Process) binary() string {
	if p.Binary == "" {
		return "haproxy"
	}
	return p.Binary
}

// Apply makes HAProxy serve cfg with the error files files (paths relative
// to Dir, see ErrorFiles). When HAProxy runs with exactly this configuration
// it does nothing. Otherwise it validates a staging copy with `haproxy -c`
// (refusal: *ValidationError, and nothing changes on disk or in HAProxy),
// installs it and starts HAProxy or reloads it hitlessly. When only
// certificates changed, it replaces them in the running worker through the
// runtime API instead, and reloads only if that fails. reloaded reports
// whether HAProxy (re)loaded the configuration.
func (p *Process) Apply(ctx context.Context, cfg []byte, files map[string][]byte) (reloaded bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := checkRuntimeSocket(p.RuntimeSocket()); err != nil {
		return false, fmt.Errorf("haproxy dir %q: %w", p.Dir, err)
	}
	if err := checkFilePaths(files); err != nil {
		return false, err
	}
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return false, err
	}
	old, err := p.installed()
	if err != nil {
		return false, err
	}
	running := p.answers(ctx)
	if running && old.same(cfg, files) {
		return false, nil
	}
	if certs, ok := old.changedCerts(cfg, files); running && ok {
		err := p.updateCerts(ctx, files, certs)
		if err == nil {
			return false, nil
		}
		logr.FromContextOrDiscard(ctx).Error(err, "Reloading HAProxy for the new certificates instead")
	}
	staging, err := os.MkdirTemp(p.Dir, ".staging-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(staging)
	if err := writeTree(staging, cfg, files); err != nil {
		return false, fmt.Errorf("writing staging configuration: %w", err)
	}
	if err := validate(ctx, p.binary(), filepath.Join(staging, ConfigFile)); err != nil {
		return false, err
	}
	if err := p.installAndLoad(ctx, staging, old, running); err != nil {
		return false, err
	}
	return true, nil
}

// installAndLoad moves the staging tree into Dir and loads it; if HAProxy
// does not take it, the previous files are put back, so that Dir always
// holds what HAProxy runs.
func (p *Process) installAndLoad(ctx context.Context, staging string, old installedFiles, running bool) error {
	moved := []string{}
	undo := func() {
		for _, dir := range moved {
			_ = os.RemoveAll(p.path(dir))
			_ = renameIfExists(filepath.Join(staging, "previous-"+dir), p.path(dir))
		}
		if old.cfg == nil {
			_ = os.Remove(p.path(ConfigFile))
		} else {
			_ = os.WriteFile(p.path(ConfigFile), old.cfg, 0o600)
		}
	}
	var err error
	for _, dir := range fileDirs {
		if err = renameIfExists(p.path(dir), filepath.Join(staging, "previous-"+dir)); err != nil {
			break
		}
		moved = append(moved, dir)
		if err = renameIfExists(filepath.Join(staging, dir), p.path(dir)); err != nil {
			break
		}
	}
	if err == nil {
		err = os.Rename(filepath.Join(staging, ConfigFile), p.path(ConfigFile))
	}
	switch {
	case err != nil:
	case running:
		err = p.reload(ctx)
	case p.Beside:
		err = p.awaitBeside(ctx)
	default:
		err = p.start(ctx)
	}
	if err != nil {
		undo()
	}
	return err
}

func renameIfExists(from, to string) error {
	err := os.Rename(from, to)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// installedFiles is what Dir holds now: the configuration HAProxy runs.
type installedFiles struct {
	cfg   []byte // nil when there is none
	files map[string][]byte
}

func (p *Process) installed() (installedFiles, error) {
	var in installedFiles
	cfg, err := os.ReadFile(p.path(ConfigFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return in, err
	}
	in.cfg, in.files = cfg, map[string][]byte{}
	for _, dir := range fileDirs {
		err = filepath.WalkDir(p.path(dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(p.Dir, path)
			if err == nil {
				in.files[filepath.ToSlash(rel)], err = os.ReadFile(path)
			}
			return err
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return in, fmt.Errorf("reading installed files of %s/: %w", dir, err)
		}
	}
	return in, nil
}

func (in installedFiles) same(cfg []byte, files map[string][]byte) bool {
	if in.cfg == nil || !bytes.Equal(in.cfg, cfg) || len(in.files) != len(files) {
		return false
	}
	for path, content := range files {
		if got, ok := in.files[path]; !ok || !bytes.Equal(got, content) {
			return false
		}
	}
	return true
}

// start launches the master in a session of its own, so that it survives
// the agent, and waits until it answers with a worker. It stays in the
// foreground (no -D): its stderr, where it writes the alerts of failed
// reloads, then stays master.log, and this process reaps it when it ends.
func (p *Process) start(ctx context.Context) error {
	if pid, alive := p.masterPID(); alive {
		return fmt.Errorf("haproxy master %d (from %s) is alive but its master socket does not answer", pid, p.path(PIDFile))
	}
	if err := os.Remove(p.path(ServerStateFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	logFile, err := os.Create(p.path(MasterLogFile))
	if err != nil {
		return err
	}
	defer logFile.Close()
	// Not CommandContext: the end of ctx must not end HAProxy.
	cmd := exec.Command(p.binary(), p.masterArgs(true)...)
	cmd.Dir = p.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting haproxy: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ctx, cancel := withDefaultTimeout(ctx, startTimeout)
	defer cancel()
	return poll(ctx, "haproxy to start a worker", func() (bool, error) {
		select {
		case err := <-exited:
			return false, fmt.Errorf("haproxy exited at start (%v): %s", err, p.masterLogSince(0))
		default:
		}
		procs, err := p.showProc(ctx)
		return err == nil && len(procs.workers) > 0, nil
	})
}

// masterArgs is the master's command line: master-worker, its CLI on the
// master socket, the configuration in Dir, and the pid file when the agent
// is its parent (a pid means nothing across the PID namespaces of two
// containers).
func (p *Process) masterArgs(pidFile bool) []string {
	args := []string{"-W", "-S", p.path(MasterSocketFile) + ",mode,600"}
	if pidFile {
		args = append(args, "-p", p.path(PIDFile))
	}
	return append(args, "-f", p.path(ConfigFile))
}

// reload asks the master to reload (it re-executes itself with the new
// configuration, hands the listening sockets to the new worker and lets the
// old one finish its connections) and waits for the outcome: HAProxy 2.6's
// master CLI does not report it, so it is read from `show proc`.
func (p *Process) reload(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx, reloadTimeout)
	defer cancel()
	before, err := p.showProc(ctx)
	if err != nil {
		return err
	}
	logStart := fileSize(p.path(MasterLogFile))
	if err := p.saveServerState(ctx); err != nil {
		return err
	}
	if _, err := p.masterCommand(ctx, "reload"); err != nil {
		return fmt.Errorf("asking haproxy to reload: %w", err)
	}
	var after procList
	err = poll(ctx, "haproxy to reload", func() (bool, error) {
		after, err = p.showProc(ctx)
		return err == nil && after.reloads > before.reloads && len(after.workers) > 0, nil
	})
	if err != nil {
		return err
	}
	if after.failedReloads > before.failedReloads {
		return fmt.Errorf("haproxy could not reload and keeps the previous configuration: %s", p.masterLogSince(logStart))
	}
	return nil
}

// saveServerState writes `show servers state` where the configuration's
// server-state-file points, so that the next worker starts with the
// current workers' server health and runtime states (drain, maint) instead
// of every server UP with a single check between it and DOWN. Without an
// answer, it removes the file rather than let an older state load.
func (p *Process) saveServerState(ctx context.Context) error {
	state, err := command(ctx, p.RuntimeSocket(), "show servers state")
	if err != nil || !strings.HasPrefix(state, "1\n") {
		if err := os.Remove(p.path(ServerStateFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	return writeFileAtomic(p.path(ServerStateFile), []byte(state))
}

// besideAlerts says where the alerts of a master beside the agent are: its
// stderr is its own container's, which no file of Dir holds.
const besideAlerts = "haproxy beside the agent writes its alerts to its own container's log: " +
	"kubectl logs the HAProxy pod on this node"

// masterLogSince returns the alerts the master printed from offset on, or
// where to read them.
func (p *Process) masterLogSince(offset int64) string {
	if p.Beside {
		return besideAlerts
	}
	f, err := os.Open(p.path(MasterLogFile))
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	out, err := io.ReadAll(io.NewSectionReader(f, offset, 1<<20))
	if err != nil {
		return err.Error()
	}
	var alerts []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "[ALERT]") && !strings.Contains(l, "rror(s) found") {
			alerts = append(alerts, strings.TrimSpace(alertPrefix.ReplaceAllString(l, "")))
		}
	}
	if len(alerts) == 0 {
		return "no alert in " + p.path(MasterLogFile)
	}
	return strings.Join(alerts, "; ")
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// answers reports whether the master answers. A master that is alive but
// silent (re-executing itself for a reload someone else asked for) is given
// startTimeout to answer, rather than be taken for dead and started twice.
func (p *Process) answers(ctx context.Context) bool {
	if p.Running(ctx) {
		return true
	}
	if _, alive := p.masterPID(); !alive {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	return poll(ctx, "the master socket", func() (bool, error) { return p.Running(ctx), nil }) == nil
}

// Running reports whether the master answers on its socket.
func (p *Process) Running(ctx context.Context) bool {
	_, err := p.showProc(ctx)
	return err == nil
}

// Stop ends the master and its workers (for cleanup: clients are cut) and
// removes the pid file and sockets; the configuration stays. A master beside
// the agent ends with its own container: Stop waits for that and fails if it
// still answers, rather than take the sockets from a HAProxy that serves.
func (p *Process) Stop(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Beside {
		if err := p.awaitEnd(ctx); err != nil {
			return err
		}
	}
	pid, alive := p.masterPID()
	if alive {
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("stopping haproxy master %d: %w", pid, err)
		}
		ctx, cancel := withDefaultTimeout(ctx, stopTimeout)
		defer cancel()
		err := poll(ctx, fmt.Sprintf("haproxy master %d to exit", pid), func() (bool, error) {
			return !processAlive(pid), nil
		})
		if err != nil {
			return err
		}
	}
	for _, name := range []string{PIDFile, MasterSocketFile, RuntimeSocketFile, ServerStateFile} {
		if err := os.Remove(p.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// poll calls done every pollInterval until it returns true or an error, or
// ctx ends.
func poll(ctx context.Context, what string, done func() (bool, error)) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
}
