package cluster

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/webfarm/webfarm/test/testbed"
)

// client sends each request on a new connection from the client namespace,
// as a new visitor: balanced, and failed over, on its own.
var client = &http.Client{
	Timeout:   time.Second,
	Transport: &http.Transport{DialContext: testbed.DialInNamespace(clientNS), DisableKeepAlives: true},
}

// get asks the farm's page through the failover IP and returns the front
// that served it.
func get() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := testbed.Get(ctx, client, "http://"+vip+"/")
	if err != nil {
		return "", err
	}
	if r.Status != http.StatusOK || r.Front == "" {
		return "", fmt.Errorf("status %d from front %q", r.Status, r.Front)
	}
	return r.Front, nil
}

// served counts which fronts served n requests in a row, all of which must
// succeed.
func served(n int) (map[string]int, error) {
	counts := map[string]int{}
	for range n {
		front, err := get()
		if err != nil {
			return counts, err
		}
		counts[front]++
	}
	return counts, nil
}

func balance(t *testing.T, c *cluster) {
	eventually(t, time.Minute, "both fronts serve", func() error {
		counts, err := served(20)
		if err != nil {
			return err
		}
		for _, n := range c.nodes {
			if counts[n] == 0 {
				return fmt.Errorf("20 requests served by %v", counts)
			}
		}
		t.Logf("20 requests: %v", counts)
		return nil
	})
}

// drain annotates the first node webfarm.io/drain and wants every new
// visitor on the other, then takes the annotation back.
func drain(t *testing.T, c *cluster) {
	drained, other := c.nodes[0], c.nodes[1]
	c.run(t, "kubectl", "annotate", "node", drained, "webfarm.io/drain=true", "--overwrite")
	start := time.Now()
	eventually(t, time.Minute, "new visitors all on "+other, func() error {
		counts, err := served(20)
		if err != nil {
			return err
		}
		if counts[other] != 20 {
			return fmt.Errorf("20 requests served by %v", counts)
		}
		return nil
	})
	t.Logf("%s drained %s after its annotation", drained, time.Since(start).Round(time.Millisecond))
	c.run(t, "kubectl", "annotate", "node", drained, "webfarm.io/drain-")
	balance(t, c)
}

// upgrade moves the agent to a new image tag with helm upgrade under a steady
// load through the failover IP: no request may fail, every node's HAProxy
// master is the same process after as before (it runs beside the agent), and
// the owner hands the address off before its agent's pod is gone.
func upgrade(t *testing.T, c *cluster) {
	// The documented path for the CRDs, which Helm never upgrades from crds/:
	// server-side apply over the ones helm install created.
	c.run(t, "kubectl", "apply", "--server-side", "--force-conflicts", "-f", "charts/webfarm/crds/")
	masters := c.haproxyMasters(t)
	for _, n := range c.nodes {
		if len(masters[n]) != 1 {
			t.Errorf("%s runs HAProxy masters %v before the upgrade, want one", n, masters[n])
		}
	}
	start := time.Now()
	agentLogs := c.updateUnderLoad(t, "agent", "agent.image.tag")
	// The new agents' logs too: they judged the fronts upgraded after theirs.
	newLogs, _ := c.try("kubectl", "-n", namespace, "logs", "-l", "app.kubernetes.io/component=agent", "--prefix", "--tail=-1",
		fmt.Sprintf("--since=%ds", int(time.Since(start).Seconds())+1))
	agentLogs += "\n" + newLogs
	// An agent that restarts said it was shutting down: no peer may take
	// its front, whose HAProxy and web server serve on, for dead.
	if n := strings.Count(agentLogs, deadFrontMark); n > 0 {
		t.Errorf("%d dead-front marks during the agents' upgrade:\n%s", n, grepLines(agentLogs, deadFrontMark))
	}
	if after := c.haproxyMasters(t); !maps.EqualFunc(after, masters, slices.Equal) {
		t.Errorf("HAProxy masters by node: %v before the upgrade, %v after: HAProxy did not outlive its agent", masters, after)
	} else {
		t.Logf("HAProxy masters (host pids) %v, the same before and after", masters)
	}
}

// haproxyUpdate moves HAProxy to a new image tag with helm upgrade under a
// steady load through the failover IP: every front's HAProxy restarts, one
// front at a time, the next one only once the new one is Ready, and the
// owner's preStop hook has its agent hand the address off first. No request
// may fail.
func haproxyUpdate(t *testing.T, c *cluster) {
	masters := c.haproxyMasters(t)
	agentLogs := c.updateUnderLoad(t, "haproxy", "haproxy.image.tag")
	t.Logf("the agents on HAProxy's hand-off requests:\n%s", grepLines(agentLogs, "HAProxy beside"))
	after := c.haproxyMasters(t)
	for _, n := range c.nodes {
		if len(after[n]) != 1 || slices.Equal(after[n], masters[n]) {
			t.Errorf("%s: HAProxy masters %v before the update, %v after: want one new master", n, masters[n], after[n])
		}
	}
}

// updateUnderLoad moves the DaemonSet of component to upgradeTag (the agent's
// image under another name) with helm upgrade --set value=upgradeTag, under
// a steady load through the failover IP, and wants no request failed, every
// pod of component Ready on the new tag, and the owner's address handed off
// before its pod of component was gone. It returns what the agents logged
// meanwhile, access log left out.
func (c *cluster) updateUnderLoad(t *testing.T, component, value string) string {
	t.Helper()
	c.tagAgentImage(t, upgradeTag)
	before := c.owner(t)
	pod := strings.TrimSpace(c.run(t, "kubectl", "-n", namespace, "get", "pods", "-l", "app.kubernetes.io/component="+component,
		"--field-selector", "spec.nodeName="+before, "-o", "jsonpath={.items[0].metadata.name}"))
	ev := c.watchEvents(t, component)
	logs := c.followAgentLogs(t)
	load := testbed.StartLoad(testbed.LoadOptions{URL: "http://" + vip + "/", Rate: 20, Client: client})
	start, loadBefore := time.Now(), testbed.LoadAverage()
	_, err := c.try("helm", "upgrade", release, "charts/webfarm", "--namespace", namespace, "--reuse-values",
		"--set", value+"="+upgradeTag, "--wait", "--timeout", "5m")
	if err == nil {
		_, err = c.try("kubectl", "-n", namespace, "rollout", "status", "daemonset/webfarm-"+component, "--timeout", "5m")
	}
	res := load.Stop()
	ev.stop()
	handedOff, _, _ := ev.movedFrom(before)
	podGone := ev.podDeleted(pod)
	agentLogs := logs()
	if err != nil {
		t.Fatal(err)
	}
	loads := fmt.Sprintf("load average %s before, %s after", loadBefore, testbed.LoadAverage())
	t.Logf("%s update on %d fronts: %s, %d requests, %d failed, longest gap %s, owners %s; %s",
		component, len(c.nodes), time.Since(start).Round(time.Second), len(res.Samples), res.Failed(), res.Gap(), strings.Join(ev.history(start), ", "), loads)
	if res.Failed() > 0 {
		// The figure is load-bound: each request has a 1 s timeout, and on 2
		// cores the web servers answer late while a new pod starts beside a
		// busy machine (docs/install.md).
		t.Errorf("requests failed during the %s update (%s; on 2 cores none failed at a load of 4 to 6, some did at 16 to 22, answered late): %s",
			component, loads, strings.Join(res.Failures(start), "; "))
		t.Logf("the agents' logs during the update, access log left out (update started %s):\n%s", start.UTC().Format("15:04:05.000"), agentLogs)
		t.Logf("what the new agents and the controller decided since:\n%s", c.decisionsSince(start))
	}
	out := c.run(t, "kubectl", "-n", namespace, "get", "pods", "-l", "app.kubernetes.io/component="+component,
		"-o", `jsonpath={range .items[*]}{.spec.containers[0].image} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
	if strings.Count(out, ":"+upgradeTag+" True") != len(c.nodes) {
		t.Errorf("%s pods' images and readiness after the update:\n%s", component, out)
	}
	checkHandoff(t, before, component, start, handedOff, podGone)
	return agentLogs
}

// deadFrontMark is what an agent logs when it marks a dead front's servers
// down (agent/deadfronts.go).
const deadFrontMark = "Marked a dead front's servers down"

// checkHandoff wants the owner before an update to have handed the failover
// IP off before its pod of component was gone.
func checkHandoff(t *testing.T, owner, component string, start, handedOff, podGone time.Time) {
	t.Helper()
	switch {
	case handedOff.IsZero():
		t.Errorf("%s's %s was replaced and the failover IP never left it", owner, component)
	case podGone.IsZero() || handedOff.After(podGone):
		t.Errorf("%s handed the failover IP off at %s, after its %s pod was gone (%s)",
			owner, handedOff.Sub(start).Round(time.Millisecond), component, podGone.Sub(start).Round(time.Millisecond))
	default:
		t.Logf("%s handed the failover IP off %s into the update, %s before its %s pod was gone",
			owner, handedOff.Sub(start).Round(time.Millisecond), podGone.Sub(handedOff).Round(time.Millisecond), component)
	}
}

// tagAgentImage gives the agent's image, imported as imageTag, the tag tag
// too on every node.
func (c *cluster) tagAgentImage(t *testing.T, tag string) {
	for i := range c.nodes {
		ctr := fmt.Sprintf("/var/tmp/wfc-cluster/node%d/containerd.sock", i+1)
		c.run(t, "bin/node-stack/ctr", "--address", ctr, "-n", "k8s.io", "images", "tag", "--force",
			"ghcr.io/webfarm/webfarm-agent:"+imageTag, "ghcr.io/webfarm/webfarm-agent:"+tag)
	}
}

// grepLines returns the lines of text that contain s.
func grepLines(text, s string) string {
	var kept []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, "\n")
}

// followAgentLogs follows the logs of the agents running now, which an
// upgrade deletes, and returns what they printed but the access log.
func (c *cluster) followAgentLogs(t *testing.T) func() string {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, c.kubectl, "-n", namespace, "logs", "-f", "-l", "app.kubernetes.io/component=agent",
		"--prefix", "--tail=0", "--timestamps")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Logf("following the agents' logs: %v", err)
		cancel()
		return func() string { return "" }
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	return func() string {
		cancel()
		_ = cmd.Wait()
		var kept []string
		for _, l := range strings.Split(out.String(), "\n") {
			if !strings.Contains(l, "\"GET ") {
				kept = append(kept, l)
			}
		}
		return strings.Join(kept, "\n")
	}
}

// ownerLoss cuts the owner's link, as if the node died, under load, and
// wants the other node serving; then gives the link back, and logs what the
// agents and the controller decided meanwhile.
func ownerLoss(t *testing.T, c *cluster) {
	ev := c.watchEvents(t, "")
	eventually(t, 30*time.Second, "the watch's first owner", func() error {
		if ev.owner() == "" {
			return fmt.Errorf("no owner seen")
		}
		return nil
	})
	owner := ev.owner()
	load := testbed.StartLoad(testbed.LoadOptions{URL: "http://" + vip + "/", Rate: 20, Client: client})
	eventually(t, 10*time.Second, "load running", func() error {
		if len(load.Result().Samples) < 20 {
			return fmt.Errorf("%d samples", len(load.Result().Samples))
		}
		return nil
	})
	if out, err := inNode(owner, "ip", "link", "set", "eth0", "down"); err != nil {
		t.Fatalf("link down on %s: %v: %s", owner, err, out)
	}
	lost := time.Now()
	var up sync.Once
	linkUp := func() { up.Do(func() { c.linkUp(t, owner) }) }
	defer linkUp()
	var moved time.Time
	eventually(t, time.Minute, "another owner than "+owner, func() error {
		at, _, ok := ev.movedFrom(owner)
		if !ok {
			return fmt.Errorf("owner %q", ev.owner())
		}
		moved = at
		return nil
	})
	eventually(t, time.Minute, "served again after the loss of "+owner, func() error {
		r := load.Result()
		for i := len(r.Samples) - 1; i >= 0 && r.Samples[i].Start.After(moved); i-- {
			if r.Samples[i].OK() {
				return nil
			}
		}
		return fmt.Errorf("no answer sent after the new owner")
	})
	res := load.Stop()
	t.Logf("hard loss of the owner %s: new owner after %s, longest gap %s, %d of %d requests failed; owners %s",
		owner, moved.Sub(lost).Round(time.Millisecond), res.Gap(), res.Failed(), len(res.Samples), strings.Join(ev.history(lost), ", "))
	// The lost node's logs go through its kubelet, on the link cut.
	linkUp()
	t.Logf("what the agents and the controller decided from the loss (%s) on:\n%s", lost.UTC().Format("15:04:05.000"), c.decisionsSince(lost))
}

// uninstall removes the release and wants no address, nat chain, HAProxy or
// state left on any node, the one labelled after the install included: the
// release's hooks name no node, the cleanup finds them when it runs.
func uninstall(t *testing.T, c *cluster) {
	if hooks := c.run(t, "helm", "get", "hooks", release, "--namespace", namespace); strings.Contains(hooks, "wfc-node") {
		t.Errorf("the release's hooks name nodes: the cleanup would miss a front labelled since")
	}
	c.run(t, "kubectl", "-n", namespace, "delete", "daemonset", "webserver", "--wait")
	// Until the category of every webfarm.io kind was renamed webfarm-all,
	// "webfarm" here named it and deleted the FrontNodes too, which left the
	// FailoverIP Terminating (controllers: UninstallFrontNodesDeleted).
	start := time.Now()
	deleted := c.run(t, "kubectl", "-n", namespace, "delete", "failoverip,webfarm", "--all", "--wait", "--timeout", "2m")
	t.Logf("kubectl delete failoverip,webfarm --all: %s\n%s", time.Since(start).Round(100*time.Millisecond), strings.TrimSpace(deleted))
	start = time.Now()
	c.run(t, "helm", "uninstall", release, "--namespace", namespace, "--wait", "--timeout", "4m")
	t.Logf("helm uninstall, its cleanup on every front included: %s", time.Since(start).Round(100*time.Millisecond))
	eventually(t, 2*time.Minute, "the agents gone", func() error {
		out, err := c.try("kubectl", "-n", namespace, "get", "pods", "-o", "name")
		if err != nil || strings.TrimSpace(out) != "" {
			return fmt.Errorf("pods: %q %v", out, err)
		}
		return nil
	})
	for _, n := range c.nodes {
		if out, _ := inNode(n, "ip", "-4", "addr"); strings.Contains(out, vip+"/") {
			t.Errorf("%s still has %s:\n%s", n, vip, out)
		}
		if out, _ := inNode(n, "iptables-save", "-t", "nat"); strings.Contains(strings.ToLower(out), "webfarm") {
			t.Errorf("%s still has webfarm's nat rules:\n%s", n, out)
		}
		if out, _ := exec.Command("sh", "-c", "for p in $(ip netns pids "+n+"); do cat /proc/$p/comm; done").Output(); strings.Contains(string(out), "haproxy") {
			t.Errorf("%s still runs HAProxy", n)
		}
		if entries, _ := os.ReadDir(filepath.Join(stateDir, n)); len(entries) > 0 {
			t.Errorf("%s's state directory %s/%s is not empty: %d entries", n, stateDir, n, len(entries))
		}
	}
}

// linkUp gives a node its link back, and the routes that went with it: to
// the Services and to the other nodes' pods, as hack/cluster.sh set them.
func (c *cluster) linkUp(t *testing.T, node string) {
	routes := [][]string{{"link", "set", "eth0", "up"}, {"route", "replace", serviceCIDR, "dev", "eth0"}}
	out, err := c.try("kubectl", "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name} {.spec.podCIDR} {.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}`)
	if err != nil {
		t.Error(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] != node {
			routes = append(routes, []string{"route", "replace", f[1], "via", f[2]})
		}
	}
	for _, r := range routes {
		if out, err := inNode(node, append([]string{"ip"}, r...)...); err != nil {
			t.Errorf("ip %s on %s: %v: %s", strings.Join(r, " "), node, err, out)
		}
	}
}

// decisionMarks are what the agents and the controller log when the failover
// protocol moves: the chain of events behind a gap.
var decisionMarks = []string{"Decided", "Took over", "Released failover", "Handed off", "Withdrew", "New owner",
	"Ownership withdrawn", "Shutting down", "handed off", "HAProxy beside", "fenc", "Fenc", "error"}

// decisionsSince returns the protocol's lines that the agents and the
// controller running now logged since a time, at most the last 80.
func (c *cluster) decisionsSince(since time.Time) string {
	secs := fmt.Sprintf("--since=%ds", int(time.Since(since).Seconds())+1)
	var lines []string
	for _, component := range []string{"agent", "controller"} {
		out, err := c.try("kubectl", "-n", namespace, "logs", "-l", "app.kubernetes.io/component="+component,
			"--prefix", "--timestamps", "--tail=-1", secs)
		if err != nil {
			lines = append(lines, err.Error())
		}
		lines = append(lines, decisions(out)...)
	}
	slices.SortStableFunc(lines, func(a, b string) int { return strings.Compare(stamp(a), stamp(b)) })
	return tail(strings.Join(lines, "\n"), 80)
}

// decisions keeps the lines of logs that carry a decisionMark.
func decisions(logs string) []string {
	var kept []string
	for _, l := range strings.Split(logs, "\n") {
		for _, m := range decisionMarks {
			if strings.Contains(l, m) {
				kept = append(kept, l)
				break
			}
		}
	}
	return kept
}

// stamp is the timestamp of a line of `kubectl logs --prefix --timestamps`,
// after the pod's prefix.
func stamp(line string) string {
	if _, rest, ok := strings.Cut(line, "] "); ok {
		return rest
	}
	return line
}
