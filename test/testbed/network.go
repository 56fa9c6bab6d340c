package testbed

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/webfarm/webfarm/internal/netnstest"
)

// The testbed's fixed names and addresses. Sweep removes exactly these
// namespaces, and nothing else, when an earlier run died without cleaning up.
const (
	// BridgeNS holds the bridge that every other namespace plugs into.
	BridgeNS = "wf-net"
	// ClientNS sends the traffic to the VIP.
	ClientNS = "wf-client"
	// FrontPrefix starts the name of each front namespace: wf-front1, ...
	FrontPrefix = "wf-front"

	bridgeName = "br0"
	// frontLink is the name of each front's (and the client's) link to the
	// bridge, as on a real host.
	frontLink = "eth0"

	// VIP is the failover address the testbed gives the sample FailoverIP.
	VIP = "10.99.0.10"
	// ClientAddress is the client namespace's address.
	ClientAddress = "10.99.0.100"
	subnetBits    = "/24"

	// WebPort is where each front's nginx listens (the samples' webPort).
	WebPort = 5380
	// MaxFronts bounds Options.Fronts: the addresses 10.99.0.11.. must stay
	// below the client's.
	MaxFronts = 9
)

// FrontName is the node name of the i-th front, from 1.
func FrontName(i int) string { return "front" + strconv.Itoa(i) }

// FrontAddress is the address of the i-th front, from 1: 10.99.0.11, ...
func FrontAddress(i int) string { return "10.99.0." + strconv.Itoa(10+i) }

// namespaceNames lists every namespace the testbed may create, for Sweep.
func namespaceNames() []string {
	names := []string{BridgeNS, ClientNS}
	for i := 1; i <= MaxFronts; i++ {
		names = append(names, FrontPrefix+strconv.Itoa(i))
	}
	return names
}

// Sweep removes the namespaces an earlier testbed left behind (after a crash
// or SIGKILL), with every process inside them. It touches only the testbed's
// own names, never other wf-* namespaces, and refuses while a testbed runs.
// Start sweeps by itself.
func Sweep() error {
	held, holder, err := lockHeldElsewhere()
	if err != nil {
		return err
	}
	if held {
		return fmt.Errorf("a testbed is running (%s): not removing its namespaces", holder)
	}
	return sweep()
}

// sweep is Sweep for the holder of the machine's testbed lock.
func sweep() error {
	existing, err := listNamespaces()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range namespaceNames() {
		if existing[name] {
			errs = append(errs, deleteNamespace(name))
		}
		// A veth end still in the root namespace: a run died inside plug.
		for _, link := range vethNames(name) {
			if exec.Command("ip", "link", "show", "dev", link).Run() == nil {
				_ = exec.Command("ip", "link", "del", "dev", link).Run()
			}
		}
	}
	return errors.Join(errs...)
}

// vethNames are the root-namespace names the two ends of a namespace's
// veth pair have while plug creates them.
func vethNames(nsName string) [2]string {
	port := strings.TrimPrefix(nsName, "wf-")
	return [2]string{"wfb-" + port, "wfp-" + port}
}

// Leftovers returns the testbed's namespaces that exist now and the processes
// still inside them; both empty once a testbed has closed.
func Leftovers() (namespaces []string, pids []int, err error) {
	existing, err := listNamespaces()
	if err != nil {
		return nil, nil, err
	}
	for _, name := range namespaceNames() {
		if existing[name] {
			namespaces = append(namespaces, name)
			p, _ := namespacePIDs(name)
			pids = append(pids, p...)
		}
	}
	return namespaces, pids, nil
}

// checkNoLeftovers fails if any testbed namespace or process inside one
// remains.
func checkNoLeftovers() error {
	namespaces, pids, err := Leftovers()
	if err != nil {
		return err
	}
	if len(namespaces) > 0 || len(pids) > 0 {
		return fmt.Errorf("left behind: namespaces %v, processes %v", namespaces, pids)
	}
	return nil
}

func listNamespaces() (map[string]bool, error) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("listing network namespaces: %w", err)
	}
	names := make(map[string]bool)
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names[f[0]] = true
		}
	}
	return names, nil
}

// namespacePIDs lists the processes whose network namespace is name.
func namespacePIDs(name string) ([]int, error) {
	out, err := exec.Command("ip", "netns", "pids", name).Output()
	if err != nil {
		return nil, fmt.Errorf("listing processes of namespace %s: %w", name, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// killNamespace SIGKILLs every process in the namespace whose command name
// is not spared (e.g. "nginx"), and returns how many it signalled.
func killNamespace(name string, spare ...string) (int, error) {
	return killWhere(name, func(comm string) bool { return !isOneOf(comm, spare) })
}

// killWhere SIGKILLs the processes in the namespace whose command name
// matches, and returns how many it signalled.
func killWhere(name string, match func(comm string) bool) (int, error) {
	pids, err := namespacePIDs(name)
	if err != nil {
		return 0, err
	}
	killed := 0
	for _, pid := range pids {
		if match(processName(pid)) && syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	return killed, nil
}

func processName(pid int) string {
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(comm))
}

func isOneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

// deleteNamespace kills everything inside the namespace, then removes it.
func deleteNamespace(name string) error {
	if _, err := killNamespace(name); err != nil {
		return err
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("removing namespace %s: %v: %s", name, err, out)
	}
	return nil
}

// ns returns the netnstest handle of a testbed namespace (for Run and Do).
func ns(name string) *netnstest.NS { return &netnstest.NS{Name: name} }

// network is the bridge namespace, the client and the fronts, created in
// that order and removed in the reverse.
type network struct {
	created []string
}

// createNamespace adds a namespace with its loopback up and records it for
// removal.
func (n *network) createNamespace(name string) error {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("creating namespace %s: %v: %s", name, err, out)
	}
	n.created = append(n.created, name)
	_, err := ns(name).Run("ip", "link", "set", "lo", "up")
	return err
}

// createBridge creates wf-net and its bridge.
func (n *network) createBridge() error {
	if err := n.createNamespace(BridgeNS); err != nil {
		return err
	}
	return runAll(ns(BridgeNS),
		[]string{"ip", "link", "add", bridgeName, "type", "bridge"},
		// Forward at once: the default 15 s learning delay would hide a moved
		// VIP behind a port that is still listening.
		[]string{"ip", "link", "set", bridgeName, "type", "bridge", "forward_delay", "0", "stp_state", "0"},
		[]string{"ip", "link", "set", bridgeName, "up"},
	)
}

// plug creates namespace name with an eth0 on the bridge holding address.
// The bridge-side end is named after the namespace so that `bridge link`
// in wf-net reads naturally.
func (n *network) plug(name, address string) error {
	if err := n.createNamespace(name); err != nil {
		return err
	}
	port := strings.TrimPrefix(name, "wf-")
	ends := vethNames(name)
	tmp := ends[0]
	steps := [][]string{
		{"ip", "link", "add", tmp, "type", "veth", "peer", "name", ends[1]},
		{"ip", "link", "set", tmp, "netns", BridgeNS, "name", port},
		{"ip", "link", "set", ends[1], "netns", name, "name", frontLink},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			_ = exec.Command("ip", "link", "del", tmp).Run()
			return fmt.Errorf("%s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	if err := runAll(ns(BridgeNS),
		[]string{"ip", "link", "set", port, "master", bridgeName},
		[]string{"ip", "link", "set", port, "up"},
	); err != nil {
		return err
	}
	return runAll(ns(name),
		[]string{"ip", "addr", "add", address + subnetBits, "dev", frontLink},
		[]string{"ip", "link", "set", frontLink, "up"},
	)
}

// tuneFront sets the front's sysctls: non-local bind (harmless, and lets a
// proxy bind the VIP before holding it), and ARP answered only for addresses
// on the receiving link and announced from them, so that a front answers
// for the VIP exactly while the VIP is on its eth0.
func tuneFront(name string) error {
	cmds := [][]string{}
	for _, kv := range []string{
		"net.ipv4.ip_nonlocal_bind=1",
		"net.ipv4.conf.all.arp_ignore=1",
		"net.ipv4.conf.all.arp_announce=2",
		"net.ipv4.conf." + frontLink + ".arp_ignore=1",
		"net.ipv4.conf." + frontLink + ".arp_announce=2",
	} {
		cmds = append(cmds, []string{"sysctl", "-q", "-w", kv})
	}
	return runAll(ns(name), cmds...)
}

// remove deletes every namespace created, last first, with its processes.
func (n *network) remove() error {
	var errs []error
	for i := len(n.created) - 1; i >= 0; i-- {
		errs = append(errs, deleteNamespace(n.created[i]))
	}
	n.created = nil
	return errors.Join(errs...)
}

func runAll(target *netnstest.NS, cmds ...[]string) error {
	for _, c := range cmds {
		if _, err := target.Run(c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}
