// Package testbed runs the whole web farm on one machine: a real control
// plane (kube-apiserver and etcd), the controller, and fronts that are
// network namespaces on a shared bridge, each with nginx, a Node object and
// webfarm-agent running a real HAProxy and writing the Sites' vhosts into
// that nginx; a client namespace sends traffic to the VIP. `webfarm-testbed` (make demo), the end-to-end tests and the
// benchmarks all start it.
//
//	wf-net      bridge br0
//	wf-front1   eth0 10.99.0.11/24, nginx on :5380, agent, HAProxy on :80
//	wf-front2   eth0 10.99.0.12/24, ...
//	wf-front3   eth0 10.99.0.13/24, ...
//	wf-client   eth0 10.99.0.100/24
//	VIP         10.99.0.10, on the eth0 of the front that owns it
//
// The API server listens on 127.0.0.1 in the root namespace. Each front
// reaches it at 127.0.0.1:6443 inside its own namespace, through a
// forwarder that the testbed can cut. Every address lives inside
// namespaces the testbed created; it needs root.
package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Options shape a testbed. The zero value is the full farm of three fronts.
type Options struct {
	// Fronts is the number of fronts, 1 to MaxFronts. Default 3.
	Fronts int
	// WithoutFarm starts the namespaces, web servers, control plane, Nodes
	// and samples, but neither the controller nor the agents.
	WithoutFarm bool
	// WithoutAgents starts the controller but no agent.
	WithoutAgents bool
	// BinDir holds prebuilt webfarm-controller and webfarm-agent binaries;
	// empty: they are built from this checkout into the testbed's directory.
	BinDir string
	// Log receives the narration (what the testbed does); nil discards it.
	Log io.Writer
	// KeepFiles leaves the testbed's directory (logs, configs) on Close.
	KeepFiles bool
	// AgentArgs are added to every agent's command line.
	AgentArgs []string
	// Uploads gives every agent a mount namespace of its own in which its
	// front's uploads directory is at UploadsPath, as on separate
	// machines (uploads.go).
	Uploads bool
}

// Testbed is a running farm. Close removes everything it created.
type Testbed struct {
	opts   Options
	dir    string
	net    network
	cp     *controlPlane
	fronts []*Front
	macs   map[string]string // MAC -> front name
	ctl    *Controller
	ctlAPI *forwarder // the controller's way to the API server
	// scrapeToken authenticates the scrapes of the controller's metrics.
	scrapeToken string
	lock        *machineLock

	closeOnce sync.Once
	closeErr  error
}

// Start builds the testbed. On error, whatever it had created is removed.
func Start(ctx context.Context, o Options) (tb *Testbed, err error) {
	if o.Fronts == 0 {
		o.Fronts = 3
	}
	if o.Fronts < 1 || o.Fronts > MaxFronts {
		return nil, fmt.Errorf("fronts %d: must be between 1 and %d", o.Fronts, MaxFronts)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the testbed creates network namespaces: run it as root")
	}
	lock, err := acquireLock(ctx, func(holder string) {
		fmt.Fprintf(o.Log, "waiting for the testbed already running on this machine (%s)\n", holder)
	})
	if err != nil {
		return nil, err
	}
	if err := sweep(); err != nil {
		_ = lock.release()
		return nil, fmt.Errorf("removing an earlier testbed's namespaces: %w", err)
	}
	dir, err := os.MkdirTemp("", "webfarm-testbed-")
	if err != nil {
		_ = lock.release()
		return nil, err
	}
	tb = &Testbed{opts: o, dir: dir, macs: map[string]string{}, lock: lock}
	defer func() {
		if err != nil {
			err = errors.Join(err, tb.Close())
			tb = nil
		}
	}()
	steps := []struct {
		what string
		do   func(context.Context) error
	}{
		{"network", tb.startNetwork},
		{"web servers", tb.startWebServers},
		{"control plane", tb.startControlPlane},
		{"cluster objects", tb.createObjects},
		{"metrics scraper", tb.grantScraper},
		{"farm processes", tb.startFarm},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return tb, err
		}
		if err := s.do(ctx); err != nil {
			return tb, fmt.Errorf("starting the testbed's %s: %w", s.what, err)
		}
	}
	return tb, nil
}

func (tb *Testbed) say(format string, args ...any) {
	fmt.Fprintf(tb.opts.Log, format+"\n", args...)
}

func (tb *Testbed) startNetwork(context.Context) error {
	if err := tb.net.createBridge(); err != nil {
		return err
	}
	if err := tb.net.plug(ClientNS, ClientAddress); err != nil {
		return err
	}
	for i := 1; i <= tb.opts.Fronts; i++ {
		f, err := newFront(i, tb.dir)
		if err != nil {
			return err
		}
		tb.fronts = append(tb.fronts, f)
		if err := tb.net.plug(f.Namespace, f.Address); err != nil {
			return err
		}
		if err := tuneFront(f.Namespace); err != nil {
			return err
		}
		mac, err := f.Run("cat", "/sys/class/net/"+frontLink+"/address")
		if err != nil {
			return err
		}
		f.MAC = strings.TrimSpace(mac)
		tb.macs[f.MAC] = f.Name
	}
	tb.say("network: bridge %s in %s; %s at %s; %d fronts at %s..%s; VIP %s",
		bridgeName, BridgeNS, ClientNS, ClientAddress, len(tb.fronts),
		tb.fronts[0].Address, tb.fronts[len(tb.fronts)-1].Address, VIP)
	return nil
}

func (tb *Testbed) startWebServers(ctx context.Context) error {
	for _, f := range tb.fronts {
		if err := f.web.proc.Start(); err != nil {
			return err
		}
	}
	c := NewClient(ClientOptions{Timeout: time.Second})
	for i, f := range tb.fronts {
		url := FrontURL(i+1, "/")
		err := tb.WaitFor(func() (bool, error) {
			resp, err := Get(ctx, c, url)
			return err == nil && resp.Body == f.Name, nil
		}, 10*time.Second)
		if err != nil {
			return fmt.Errorf("nginx of %s at %s: %w\n%s", f.Name, url, err, f.web.proc.LogTail(10))
		}
	}
	tb.say("web servers: nginx on every front at <front>:%d answers with the front's name", WebPort)
	return nil
}

func (tb *Testbed) startControlPlane(context.Context) error {
	cp, err := startControlPlane(tb.dir)
	if err != nil {
		return err
	}
	tb.cp = cp
	target, err := cp.hostPort()
	if err != nil {
		return err
	}
	if err := cp.writeKubeconfig(tb.Kubeconfig(), target); err != nil {
		return err
	}
	// The controller goes through a forwarder too, so that CutAPI can take
	// the API server away from every component at once.
	tb.ctlAPI, err = newForwarder("", "127.0.0.1:0", target)
	if err != nil {
		return err
	}
	if err := cp.writeKubeconfig(tb.controllerKubeconfig(), tb.ctlAPI.Address()); err != nil {
		return err
	}
	for _, f := range tb.fronts {
		if f.api, err = newForwarder(f.Namespace, forwardedAPIAddress, target); err != nil {
			return err
		}
		if err := cp.writeKubeconfig(f.Kubeconfig(), forwardedAPIAddress); err != nil {
			return err
		}
	}
	tb.say("control plane: kube-apiserver and etcd at https://%s; each front reaches it at https://%s in its namespace", target, forwardedAPIAddress)
	return nil
}

func (tb *Testbed) createObjects(ctx context.Context) error {
	for _, f := range tb.fronts {
		if err := createNode(ctx, tb.cp.client, f.Name, f.Address); err != nil {
			return err
		}
	}
	tb.say("nodes: %s, labelled %s=true, with their InternalIP", strings.Join(tb.FrontNames(), ", "), FrontLabel)
	if err := createPeerSecret(ctx, tb.cp.client); err != nil {
		return err
	}
	tb.say("peer key: secret %s/%s (key %s, random)", OperatorNamespace, PeerSecretName, PeerSecretKey)
	out, err := applySamples(tb.Kubectl, VIP, tb.dir)
	if err != nil {
		return err
	}
	tb.say("samples: kubectl apply -k config/samples into namespace %s, with the FailoverIP's address replaced by the VIP %s:\n%s",
		SamplesNamespace, VIP, indent(out))
	return nil
}

func (tb *Testbed) startFarm(context.Context) error {
	if tb.opts.WithoutFarm {
		tb.say("farm: not started (WithoutFarm)")
		return nil
	}
	binDir := tb.opts.BinDir
	if binDir == "" {
		binDir = filepath.Join(tb.dir, "bin")
		programs := []string{controllerBinary, agentBinary}
		if tb.opts.WithoutAgents {
			programs = programs[:1]
		}
		if err := buildBinaries(binDir, programs...); err != nil {
			return err
		}
	}
	tb.ctl = newController(binDir, tb.controllerKubeconfig(), filepath.Join(tb.dir, "controller.log"))
	if err := tb.ctl.Start(); err != nil {
		return err
	}
	if tb.opts.WithoutAgents {
		tb.say("farm: webfarm-controller started, no agent (WithoutAgents); log %s", tb.ctl.LogPath())
		return nil
	}
	// As the chart does: the example notify hooks at every agent's
	// --hooks-dir, for a FailoverIP that names them (the database's).
	if err := DatabaseHooksDir(tb.HooksDir()); err != nil {
		return err
	}
	for _, f := range tb.fronts {
		f.agent = newAgent(f, binDir)
		f.agent.proc.argv = append(f.agent.proc.argv, "--hooks-dir", tb.HooksDir())
		f.agent.proc.argv = append(f.agent.proc.argv, tb.opts.AgentArgs...)
		if tb.opts.Uploads {
			if err := tb.mountUploads(f); err != nil {
				return err
			}
		}
		if err := f.agent.Start(); err != nil {
			return err
		}
	}
	tb.say("farm: webfarm-controller started; webfarm-agent started in every front (logs in %s)", tb.dir)
	return nil
}

// Dir holds every file of the testbed: kubeconfigs, logs, configs.
func (tb *Testbed) Dir() string { return tb.dir }

// HooksDir is every agent's --hooks-dir: the chart's notify hooks, with
// the client options of the MariaDB hooks beside them.
func (tb *Testbed) HooksDir() string { return filepath.Join(tb.dir, "hooks") }

// Kubeconfig is the admin kubeconfig for a person or a test in the root
// namespace (direct to the API server, never cut).
func (tb *Testbed) Kubeconfig() string { return filepath.Join(tb.dir, "kubeconfig") }

func (tb *Testbed) controllerKubeconfig() string {
	return filepath.Join(tb.dir, "kubeconfig-controller")
}

// KubeClient is an admin controller-runtime client of the API server (root
// namespace, never cut), with the built-in and webfarm kinds.
func (tb *Testbed) KubeClient() client.Client { return tb.cp.client }

// Client returns a new HTTP client of the client namespace, without
// cookies and without keep-alive: every request is a new visitor.
func (tb *Testbed) Client() *http.Client { return NewClient(ClientOptions{}) }

// Kubectl runs the control plane's kubectl with Kubeconfig and returns its
// standard output.
func (tb *Testbed) Kubectl(args ...string) (string, error) {
	cmd := exec.Command(tb.cp.kubectl, append([]string{"--kubeconfig", tb.Kubeconfig()}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// KubectlPath is the kubectl binary built with the control plane.
func (tb *Testbed) KubectlPath() string { return tb.cp.kubectl }

// Fronts lists the fronts in order.
func (tb *Testbed) Fronts() []*Front { return tb.fronts }

// FrontNames lists the fronts' names in order.
func (tb *Testbed) FrontNames() []string {
	names := make([]string, len(tb.fronts))
	for i, f := range tb.fronts {
		names[i] = f.Name
	}
	return names
}

// Front returns the front named name (front1, ...), nil if there is none.
func (tb *Testbed) Front(name string) *Front {
	for _, f := range tb.fronts {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// FrontByMAC returns the name of the front whose eth0 has mac.
func (tb *Testbed) FrontByMAC(mac string) string { return tb.macs[mac] }

// Controller is the controller process (nil with WithoutFarm).
func (tb *Testbed) Controller() *Controller { return tb.ctl }

// CutAPI takes the API server away from the controller and every agent at
// once (as an API server outage would), until RestoreAPI.
func (tb *Testbed) CutAPI() {
	tb.ctlAPI.Cut()
	for _, f := range tb.fronts {
		f.CutAPI()
	}
}

// RestoreAPI undoes CutAPI.
func (tb *Testbed) RestoreAPI() {
	tb.ctlAPI.Restore()
	for _, f := range tb.fronts {
		f.RestoreAPI()
	}
}

// WaitFor polls cond every 100ms until it holds, returns an error, or
// timeout passes.
func (tb *Testbed) WaitFor(cond func() (bool, error), timeout time.Duration) error {
	return WaitFor(cond, timeout)
}

// WaitFor polls cond every 100ms until it holds, returns an error, or
// timeout passes.
func WaitFor(cond func() (bool, error), timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not true after %s", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Close stops every process and removes every namespace and file the
// testbed created. It may be called more than once.
func (tb *Testbed) Close() error {
	tb.closeOnce.Do(func() { tb.closeErr = tb.close() })
	return tb.closeErr
}

func (tb *Testbed) close() error {
	var errs []error
	// Killed rather than stopped: a graceful agent would first hand its
	// addresses off to peers that are about to go too.
	for _, f := range tb.fronts {
		if f.agent != nil {
			errs = append(errs, f.agent.proc.Kill())
		}
	}
	if tb.ctl != nil {
		errs = append(errs, tb.ctl.proc.Kill())
	}
	for _, f := range tb.fronts {
		if f.api != nil {
			errs = append(errs, f.api.Close())
		}
		errs = append(errs, f.web.proc.Kill())
	}
	if tb.ctlAPI != nil {
		errs = append(errs, tb.ctlAPI.Close())
	}
	errs = append(errs, tb.net.remove())
	errs = append(errs, checkNoLeftovers())
	if tb.cp != nil {
		errs = append(errs, tb.cp.stop())
	}
	if !tb.opts.KeepFiles {
		errs = append(errs, os.RemoveAll(tb.dir))
	}
	// Last: the next testbed may start once everything here is gone.
	errs = append(errs, tb.lock.release())
	return errors.Join(errs...)
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
