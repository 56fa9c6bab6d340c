package testbed

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Front is one front node: a network namespace on the bridge with its own
// address, its web server, its way to the API server and its agent.
type Front struct {
	// Name is the Node's name: front1, front2, ...
	Name string
	// Namespace is its network namespace: wf-front1, ...
	Namespace string
	// Address is its own address on the bridge: 10.99.0.11, ...
	Address string
	// MAC is the hardware address of its eth0.
	MAC string

	dir   string
	web   *webServer
	api   *forwarder
	agent *Agent
	// scrapeToken authenticates the scrapes of the agent's metrics.
	scrapeToken string
}

func newFront(i int, root string) (*Front, error) {
	f := &Front{
		Name:      FrontName(i),
		Namespace: FrontPrefix + fmt.Sprint(i),
		Address:   FrontAddress(i),
		dir:       filepath.Join(root, FrontName(i)),
	}
	if err := os.MkdirAll(f.StateDir(), 0o755); err != nil {
		return nil, err
	}
	web, err := newWebServer(f.Name, f.Address, filepath.Join(f.dir, "nginx"))
	if err != nil {
		return nil, err
	}
	f.web = web
	return f, nil
}

// Dir holds every file of this front: kubeconfig, logs, nginx, state.
func (f *Front) Dir() string { return f.dir }

// StateDir is the agent's --state-dir.
func (f *Front) StateDir() string { return filepath.Join(f.dir, "state") }

// Kubeconfig reaches the API server from inside the front's namespace,
// through its forwarder at 127.0.0.1:6443.
func (f *Front) Kubeconfig() string { return filepath.Join(f.dir, "kubeconfig") }

// Agent is the front's webfarm-agent (nil when the testbed runs without
// the farm's processes).
func (f *Front) Agent() *Agent { return f.agent }

// AccessLog returns the lines of the front's nginx access log.
func (f *Front) AccessLog() ([]string, error) { return f.web.AccessLog() }

// AccessLogPath is the front's nginx access log.
func (f *Front) AccessLogPath() string { return f.web.AccessLogPath() }

// CutAPI isolates the front from the API server (its network stays up).
func (f *Front) CutAPI() { f.api.Cut() }

// RestoreAPI undoes CutAPI.
func (f *Front) RestoreAPI() { f.api.Restore() }

// Run runs a command inside the front's namespace and returns its output.
func (f *Front) Run(name string, args ...string) (string, error) {
	return ns(f.Namespace).Run(name, args...)
}

// Down takes the front's link to the bridge down: the front is cut from
// its peers and clients, as if unplugged.
func (f *Front) Down() error {
	_, err := f.Run("ip", "link", "set", "dev", frontLink, "down")
	return err
}

// Up brings the front's link back.
func (f *Front) Up() error {
	_, err := f.Run("ip", "link", "set", "dev", frontLink, "up")
	return err
}

// Addresses lists the IPv4 addresses on the front's link (its own, and the
// VIP while it holds it).
func (f *Front) Addresses() ([]string, error) {
	out, err := f.Run("ip", "-4", "-o", "addr", "show", "dev", frontLink)
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		for i := 0; i+1 < len(fields); i++ {
			if fields[i] == "inet" {
				addrs = append(addrs, strings.SplitN(fields[i+1], "/", 2)[0])
			}
		}
	}
	return addrs, nil
}

// HoldsVIP reports whether the VIP is on the front's link.
func (f *Front) HoldsVIP() (bool, error) { return f.HoldsAddress(VIP) }

// HoldsAddress reports whether address is on the front's link.
func (f *Front) HoldsAddress(address string) (bool, error) {
	addrs, err := f.Addresses()
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if a == address {
			return true, nil
		}
	}
	return false, nil
}

// Crash is a hard loss of the node: every process in its namespace (agent,
// HAProxy, nginx) is SIGKILLed and its link goes down, with nothing handed
// off and nothing cleaned up.
func (f *Front) Crash() error {
	if f.agent != nil {
		if err := f.agent.proc.Kill(); err != nil {
			return err
		}
	}
	if _, err := killNamespace(f.Namespace); err != nil {
		return err
	}
	_ = f.web.proc.Kill()
	return f.Down()
}

// Recover brings a crashed front back as a reboot would: the addresses it
// held and the agent's state (both lost at a reboot) are gone, then the
// link comes up, nginx starts and, if the testbed runs the farm, the agent.
func (f *Front) Recover() error {
	if err := f.removeForeignAddresses(); err != nil {
		return err
	}
	if err := os.RemoveAll(f.StateDir()); err != nil {
		return err
	}
	if err := os.MkdirAll(f.StateDir(), 0o755); err != nil {
		return err
	}
	if err := f.Up(); err != nil {
		return err
	}
	if !f.web.proc.Running() {
		if err := f.web.proc.Start(); err != nil {
			return err
		}
	}
	if f.agent != nil && !f.agent.Running() {
		return f.agent.Start()
	}
	return nil
}

// removeForeignAddresses deletes every IPv4 address but the front's own.
func (f *Front) removeForeignAddresses() error {
	addrs, err := f.Addresses()
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if a == f.Address {
			continue
		}
		if _, err := f.Run("ip", "addr", "del", a+"/32", "dev", frontLink); err != nil {
			return err
		}
	}
	return nil
}

// StopWeb stops the front's nginx (its web server goes down, HAProxy stays).
func (f *Front) StopWeb() error { return f.web.proc.Stop() }

// StartWeb starts the front's nginx again.
func (f *Front) StartWeb() error { return f.web.proc.Start() }
