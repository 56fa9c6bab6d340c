package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClusterInstall is the life of a release on a real cluster: helm install
// with the chart's defaults but the images and a per-node state directory,
// the sample farm serving through its failover IP (balance, drain by
// annotation), helm upgrade to a new agent image under load, then to a new
// HAProxy image under load, a hard loss of
// the owner, and helm uninstall leaving nothing on any node.
func TestClusterInstall(t *testing.T) {
	skip(t)
	c := up(t)
	// A step the later ones need stops the test when it fails; the others
	// leave a working farm behind even when they fail, so the rest still run.
	steps := []struct {
		name     string
		run      func(*testing.T, *cluster)
		required bool
	}{
		{"install", install, true},
		{"farm serves through the failover IP", sampleFarm, true},
		{"balance", balance, false},
		{"drain by annotation", drain, false},
		{"upgrade under load", upgrade, false},
		{"HAProxy image update under load", haproxyUpdate, false},
		{"hard loss of the owner", ownerLoss, false},
		{"uninstall leaves nothing", uninstall, false},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) { s.run(t, c) }) {
			c.dumpState(t)
			if s.required {
				return
			}
		}
	}
}

// install runs helm install with the chart's defaults (HAProxy in a
// DaemonSet beside the agents), except the image references (imported, never pulled) and the state directory: one per node,
// since the nodes share one host's filesystem, inside the cluster's directory,
// which `down` removes.
//
// The second node becomes a front only after the install, as a node
// labelled later would: the uninstall must clean it too.
func install(t *testing.T, c *cluster) {
	late := c.nodes[len(c.nodes)-1]
	c.run(t, "kubectl", "label", "node", late, "webfarm.io/front-")
	start := time.Now()
	c.run(t, "helm", "install", release, "charts/webfarm", "--namespace", namespace, "--create-namespace",
		"--set", "controller.image.tag="+imageTag, "--set", "controller.image.pullPolicy=Never",
		"--set", "agent.image.tag="+imageTag, "--set", "agent.image.pullPolicy=Never",
		"--set", "haproxy.image.tag="+imageTag, "--set", "haproxy.image.pullPolicy=Never",
		"--set", "agent.stateDir="+stateDir, "--set", "agent.stateDirPerNode=true", "--wait", "--timeout", "5m")
	c.run(t, "kubectl", "-n", namespace, "rollout", "status", "deployment/webfarm-controller", "--timeout", "3m")
	c.run(t, "kubectl", "-n", namespace, "rollout", "status", "daemonset/webfarm-agent", "--timeout", "3m")
	c.run(t, "kubectl", "-n", namespace, "rollout", "status", "daemonset/webfarm-haproxy", "--timeout", "3m")
	t.Logf("controller, agents and HAProxy Ready %s after helm install", time.Since(start).Round(time.Second))
	c.run(t, "kubectl", "label", "node", late, "webfarm.io/front=true")
	eventually(t, 3*time.Minute, "an agent and a HAProxy Ready on every front", func() error {
		for _, ds := range []string{"webfarm-agent", "webfarm-haproxy"} {
			out, err := c.try("kubectl", "-n", namespace, "get", "daemonset", ds, "-o", "jsonpath={.status.numberReady}")
			if err != nil || strings.TrimSpace(out) != fmt.Sprint(len(c.nodes)) {
				return fmt.Errorf("%s: %q Ready, %v", ds, out, err)
			}
		}
		return nil
	})
}

// sampleFarm applies config/samples, its FailoverIP on the cluster's bridge,
// and a web server on every front, and waits for the farm to answer through
// the failover IP.
func sampleFarm(t *testing.T, c *cluster) {
	dir := filepath.Join(repoRoot, "config", "samples")
	var docs []string
	for _, f := range []string{"stats_secret.yaml", "error_pages_configmap.yaml", "webfarm_v1alpha1_webfarm.yaml", "webfarm_v1alpha1_failoverip.yaml"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	farm := strings.Join(docs, "\n---\n")
	farm = strings.Replace(farm, "address: 203.0.113.10", "address: "+vip, 1)
	farm = strings.Replace(farm, "preferredNode: front1", "preferredNode: wfc-node1", 1)
	c.apply(t, farm+"\n---\n"+webServerDaemonSet)
	c.run(t, "kubectl", "-n", namespace, "rollout", "status", "daemonset/webserver", "--timeout", "3m")
	start := time.Now()
	eventually(t, 2*time.Minute, "the farm answers through "+vip, func() error {
		_, err := get()
		return err
	})
	t.Logf("farm answering %s after its objects were applied; owner %s", time.Since(start).Round(time.Millisecond), c.owner(t))
}

// webServerDaemonSet is the web server on each front's webPort, on the host
// network as a real web server beside HAProxy would be.
var webServerDaemonSet = fmt.Sprintf(`apiVersion: apps/v1
kind: DaemonSet
metadata: {name: webserver, namespace: %s}
spec:
  selector: {matchLabels: {app: webserver}}
  template:
    metadata: {labels: {app: webserver}}
    spec:
      hostNetwork: true
      nodeSelector: {webfarm.io/front: "true"}
      containers:
      - name: web
        image: wfc.local/webserver:dev
        imagePullPolicy: Never
        env:
        - {name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
        securityContext: {allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: {drop: [ALL]}}
`, namespace)

func (c *cluster) apply(t *testing.T, manifest string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "manifest.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	c.run(t, "kubectl", "-n", namespace, "apply", "-f", f)
}

// owner is the node that holds the sample failover IP, as its status says.
func (c *cluster) owner(t *testing.T) string {
	t.Helper()
	out, err := c.try("kubectl", "-n", namespace, "get", "failoverip", "failover", "-o", "jsonpath={.status.owner}")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// dumpState logs what a failed step leaves to look at.
func (c *cluster) dumpState(t *testing.T) {
	logDaemons(t)
	for _, args := range [][]string{
		{"get", "nodes,pods,failoverips,frontnodes,webfarms", "-A", "-o", "wide"},
		{"-n", namespace, "logs", "-l", "app.kubernetes.io/component=agent", "--tail", "40", "--prefix"},
		{"-n", namespace, "logs", "-l", "app.kubernetes.io/component=controller", "--tail", "20", "--prefix"},
		{"get", "events", "-A", "--sort-by", ".lastTimestamp"},
	} {
		out, err := c.try("kubectl", args...)
		t.Logf("kubectl %s:\n%s%v", strings.Join(args, " "), tail(out, 60), errOrEmpty(err))
	}
}

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
