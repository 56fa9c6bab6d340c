package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
// load through the failover IP: no request may fail.
func upgrade(t *testing.T, c *cluster) {
	for i := range c.nodes {
		ctr := fmt.Sprintf("/var/tmp/wfc-cluster/node%d/containerd.sock", i+1)
		c.run(t, "bin/node-stack/ctr", "--address", ctr, "-n", "k8s.io", "images", "tag", "--force",
			"ghcr.io/webfarm/webfarm-agent:"+imageTag, "ghcr.io/webfarm/webfarm-agent:"+upgradeTag)
	}
	// The documented path for the CRDs, which Helm never upgrades from crds/:
	// server-side apply over the ones helm install created.
	c.run(t, "kubectl", "apply", "--server-side", "--force-conflicts", "-f", "charts/webfarm/crds/")
	before := c.owner(t)
	load := testbed.StartLoad(testbed.LoadOptions{URL: "http://" + vip + "/", Rate: 20, Client: client})
	start := time.Now()
	_, err := c.try("helm", "upgrade", release, "charts/webfarm", "--namespace", namespace, "--reuse-values",
		"--set", "agent.image.tag="+upgradeTag, "--wait", "--timeout", "5m")
	if err == nil {
		_, err = c.try("kubectl", "-n", namespace, "rollout", "status", "daemonset/webfarm-agent", "--timeout", "5m")
	}
	res := load.Stop()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("upgrade of %d agents: %s, %d requests, %d failed, longest gap %s, owner %s then %s",
		len(c.nodes), time.Since(start).Round(time.Second), len(res.Samples), res.Failed(), res.Gap(), before, c.owner(t))
	if res.Failed() > 0 {
		t.Errorf("requests failed during the upgrade: %s", strings.Join(res.Failures(start), "; "))
	}
	out := c.run(t, "kubectl", "-n", namespace, "get", "pods", "-l", "app.kubernetes.io/component=agent",
		"-o", "jsonpath={range .items[*]}{.spec.containers[0].image}{\"\\n\"}{end}")
	if strings.Count(out, ":"+upgradeTag) != len(c.nodes) {
		t.Errorf("agents' images after the upgrade:\n%s", out)
	}
}

// ownerLoss cuts the owner's link, as if the node died, under load, and
// wants the other node serving; then gives the link back.
func ownerLoss(t *testing.T, c *cluster) {
	owner := c.owner(t)
	if owner == "" {
		t.Fatal("no owner to lose")
	}
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
	defer c.linkUp(t, owner)
	var moved time.Time
	eventually(t, time.Minute, "another owner than "+owner, func() error {
		if o := c.owner(t); o == owner || o == "" {
			return fmt.Errorf("owner %q", o)
		}
		moved = time.Now()
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
	t.Logf("new owner %s after %s", c.owner(t), moved.Sub(lost).Round(time.Millisecond))
	res := load.Stop()
	t.Logf("hard loss of the owner %s: longest gap %s, %d of %d requests failed; new owner %s",
		owner, res.Gap(), res.Failed(), len(res.Samples), c.owner(t))
}

// uninstall removes the release and wants no address, nat chain, HAProxy or
// state left on any node.
func uninstall(t *testing.T, c *cluster) {
	c.run(t, "kubectl", "-n", namespace, "delete", "daemonset", "webserver", "--wait")
	c.run(t, "kubectl", "-n", namespace, "delete", "failoverip,webfarm", "--all", "--wait", "--timeout", "2m")
	c.run(t, "helm", "uninstall", release, "--namespace", namespace, "--wait", "--timeout", "3m")
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
