// Package cluster runs webfarm as users do: its images, built without a
// daemon, imported into the containerd of each node of a real cluster on this
// machine (hack/cluster.sh: real kubelets, kube-proxy and CNI in network
// namespaces), installed with `helm install`, serving the sample farm through
// its failover IP to a client namespace.
//
// Tests named TestCluster… run only as root with WEBFARM_CLUSTER=1 (as `make
// test-cluster` sets), with $HELM and $KUBEBUILDER_ASSETS (kubectl) set.
package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/webfarm/webfarm/internal/testenv"
	"github.com/webfarm/webfarm/test/testbed"
)

const (
	// release and namespace of the install; the sample farm lives there too.
	release   = "webfarm"
	namespace = "webfarm-system"
	// vip is the sample FailoverIP's address on the cluster's bridge.
	vip      = "10.98.0.10"
	clientNS = "wfc-client"
	// serviceCIDR is hack/cluster.sh's Service range.
	serviceCIDR = "10.96.0.0/16"
	// stateDir is the agents' host directory, in hack/cluster.sh's.
	stateDir = "/var/tmp/wfc-cluster/state"
	// imageTag is the tag hack/cluster.sh gives both images it imports;
	// upgradeTag another name for the same agent image, for the upgrade.
	imageTag   = "dev"
	upgradeTag = "dev2"
)

var repoRoot = testenv.RepoRoot()

// cluster is the cluster of one test, and the tools to drive it.
type cluster struct {
	kubeconfig, kubectl, helm string
	nodes                     []string
}

func skip(t *testing.T) {
	t.Helper()
	if os.Getenv("WEBFARM_CLUSTER") != "1" {
		t.Skip("cluster test: set WEBFARM_CLUSTER=1 and run as root (make test-cluster)")
	}
	if os.Geteuid() != 0 {
		t.Skip("cluster test: needs root")
	}
	if os.Getenv("HELM") == "" || os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("cluster test: set HELM and KUBEBUILDER_ASSETS (make test-cluster does)")
	}
}

// up brings the cluster up and tears it down when t ends, pass or fail; then
// nothing of it may be left on the host.
func up(t *testing.T) *cluster {
	t.Helper()
	// The testbed's lock: a soak or fault trial beside this cluster would
	// measure the cluster's load, and this test theirs.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	release, err := testbed.LockMachine(ctx, func(holder string) { t.Logf("waiting for the testbed's lock (%s)", holder) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = release() })
	script := filepath.Join(repoRoot, "hack", "cluster.sh")
	t.Cleanup(func() {
		if out, err := exec.Command(script, "down").CombinedOutput(); err != nil {
			t.Errorf("hack/cluster.sh down: %v\n%s", err, out)
		}
		if left := leftovers(); len(left) > 0 {
			t.Errorf("left on the host after down: %s", strings.Join(left, "; "))
		}
	})
	start := time.Now()
	cmd := exec.Command(script, "up")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		logDaemons(t)
		t.Fatalf("hack/cluster.sh up: %v\n%s", err, tail(stderr.String(), 60))
	}
	t.Logf("cluster up in %s", time.Since(start).Round(time.Second))
	return &cluster{
		kubeconfig: strings.TrimSpace(string(out)),
		kubectl:    filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"),
		helm:       os.Getenv("HELM"),
		nodes:      []string{"wfc-node1", "wfc-node2"},
	}
}

// logDaemons logs the end of every daemon's log, before down removes them.
func logDaemons(t *testing.T) {
	logs, _ := filepath.Glob("/var/tmp/wfc-cluster/log/*.log")
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		t.Logf("%s:\n%s", filepath.Base(l), tail(string(b), 15))
	}
}

// leftovers lists what hack/cluster.sh may leave behind and must not.
func leftovers() []string {
	var left []string
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), "wfc-") {
		left = append(left, "namespaces: "+strings.Join(strings.Fields(string(out)), " "))
	}
	if m, _ := filepath.Glob("/sys/fs/cgroup/*/wfc-node*"); len(m) > 0 {
		left = append(left, "cgroups: "+strings.Join(m, " "))
	}
	if _, err := os.Stat("/var/tmp/wfc-cluster"); err == nil {
		left = append(left, "directory /var/tmp/wfc-cluster")
	}
	if exec.Command("ip", "link", "show", "dev", "wfc-host").Run() == nil {
		left = append(left, "link wfc-host")
	}
	return left
}

func (c *cluster) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := c.try(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// try runs kubectl or helm ("kubectl", "helm") or any command against the
// cluster and returns its output.
func (c *cluster) try(name string, args ...string) (string, error) {
	switch name {
	case "kubectl":
		name = c.kubectl
	case "helm":
		name = c.helm
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig)
	cmd.Dir = repoRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, tail(stderr.String(), 30))
	}
	return string(out), nil
}

// inNode runs a command in a node's network namespace.
func inNode(node string, args ...string) (string, error) {
	out, err := exec.Command("nsenter", append([]string{"--net=/run/netns/" + node, "--"}, args...)...).CombinedOutput()
	return string(out), err
}

// haproxyMasters are, by node, the host pids of the HAProxy masters in the
// node's network namespace: haproxy processes whose parent is not haproxy.
func (c *cluster) haproxyMasters(t *testing.T) map[string][]int {
	t.Helper()
	masters := map[string][]int{}
	for _, n := range c.nodes {
		out, err := exec.Command("ip", "netns", "pids", n).Output()
		if err != nil {
			t.Fatalf("ip netns pids %s: %v", n, err)
		}
		for _, f := range strings.Fields(string(out)) {
			pid, _ := strconv.Atoi(f)
			if comm(pid) == "haproxy" && comm(parent(pid)) != "haproxy" {
				masters[n] = append(masters[n], pid)
			}
		}
	}
	return masters
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// parent reads the parent's pid from /proc/<pid>/stat, after the command
// name in parentheses; 0 when the process is gone.
func parent(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// eventually polls f every 250ms until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		<-tick.C
	}
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
