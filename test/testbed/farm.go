package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/webfarm/webfarm/internal/testenv"
)

// The farm's own binaries, built from this checkout.
const (
	controllerBinary = "webfarm-controller"
	agentBinary      = "webfarm-agent"
)

// buildBinaries builds the named programs of cmd/ into dir.
func buildBinaries(dir string, programs ...string) error {
	for _, name := range programs {
		pkg := "./cmd/" + name
		if _, err := os.Stat(filepath.Join(testenv.RepoRoot(), "cmd", name)); err != nil {
			return fmt.Errorf("%s does not exist in this checkout yet (start the testbed with WithoutFarm): %w", pkg, err)
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Dir = testenv.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w: %s", pkg, err, out)
		}
	}
	return nil
}

// Controller is the webfarm-controller process, in the root namespace.
type Controller struct{ proc *process }

func newController(binDir, kubeconfig, logPath string) *Controller {
	return &Controller{proc: &process{
		name: controllerBinary,
		argv: []string{
			filepath.Join(binDir, controllerBinary),
			"--kubeconfig", kubeconfig,
			"--namespace", OperatorNamespace,
			"--farm-namespaces", SamplesNamespace,
			"--leader-elect=false",
			"--metrics-bind-address", ControllerMetricsAddr,
			"--health-probe-bind-address", "127.0.0.1:0",
			"--zap-time-encoding", "rfc3339nano",
		},
		log: logPath,
	}}
}

// Start starts the controller.
func (c *Controller) Start() error { return c.proc.Start() }

// Stop stops the controller gracefully (SIGTERM).
func (c *Controller) Stop() error { return c.proc.Stop() }

// Running reports whether the controller runs.
func (c *Controller) Running() bool { return c.proc.Running() }

// LogPath is the controller's log file.
func (c *Controller) LogPath() string { return c.proc.log }

// LogTail returns the last n lines of the controller's log.
func (c *Controller) LogTail(n int) string { return c.proc.LogTail(n) }

// Agent is a front's webfarm-agent, inside the front's namespace. The agent
// starts HAProxy detached, so HAProxy outlives a stopped agent, as on a
// node where the agent's container restarts.
type Agent struct {
	front *Front
	proc  *process
}

func newAgent(f *Front, binDir string) *Agent {
	return &Agent{front: f, proc: &process{
		name: agentBinary + " " + f.Name,
		ns:   f.Namespace,
		argv: []string{
			filepath.Join(binDir, agentBinary),
			"--node-name", f.Name,
			"--namespace", OperatorNamespace,
			"--kubeconfig", f.Kubeconfig(),
			"--state-dir", f.StateDir(),
			// As the chart does: the peer heartbeats on the front's own
			// address, never on the failover IP it holds.
			"--peer-bind-address", f.Address,
			"--metrics-bind-address", AgentMetricsAddr,
			"--health-probe-bind-address", "0",
			"--zap-time-encoding", "rfc3339nano",
			// The Sites' vhosts in the front's own nginx, logging where
			// it does; their certificates' Secrets watched.
			"--nginx-dir", f.web.vhostDir(),
			"--nginx-config", f.web.confPath(),
			"--nginx-access-log", f.web.AccessLogPath(),
			"--watch-secrets",
		},
		log: filepath.Join(f.dir, "agent.log"),
	}}
}

// Start starts the agent.
func (a *Agent) Start() error { return a.proc.Start() }

// checksOnlyFlag leaves dead fronts to HAProxy's checks (agent.Options).
const checksOnlyFlag = "--checks-only"

// RestartChecksOnly stops the agent gracefully and starts it again with or
// without --checks-only; a later Start keeps the choice.
func (a *Agent) RestartChecksOnly(on bool) error {
	if err := a.proc.Stop(); err != nil {
		return err
	}
	a.proc.argv = slices.DeleteFunc(a.proc.argv, func(arg string) bool { return arg == checksOnlyFlag })
	if on {
		a.proc.argv = append(a.proc.argv, checksOnlyFlag)
	}
	return a.proc.Start()
}

// Stop stops the agent gracefully (SIGTERM): it hands off the addresses it
// holds before exiting.
func (a *Agent) Stop() error { return a.proc.Stop() }

// Kill SIGKILLs the agent and every HAProxy of its front, leaving the web
// server and the network as they are (addresses included).
func (a *Agent) Kill() error {
	if err := a.proc.Kill(); err != nil {
		return err
	}
	_, err := killNamespace(a.front.Namespace, "nginx")
	return err
}

// KillProcess SIGKILLs the agent process alone: HAProxy keeps serving and
// the addresses stay, as when an agent's container crashes.
func (a *Agent) KillProcess() error { return a.proc.Kill() }

// Signal sends sig to the agent process alone (SIGSTOP, SIGCONT...).
func (a *Agent) Signal(sig syscall.Signal) error { return a.proc.Signal(sig) }

// Running reports whether the agent runs.
func (a *Agent) Running() bool { return a.proc.Running() }

// LogPath is the agent's log file.
func (a *Agent) LogPath() string { return a.proc.log }

// LogTail returns the last n lines of the agent's log.
func (a *Agent) LogTail(n int) string { return a.proc.LogTail(n) }
