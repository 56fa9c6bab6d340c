package serving

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/webfarm/webfarm/agent/haproxy"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/netnstest"
)

const nodeFarmPort = 8080

// nodeProbes are the real probes, acting inside ns.
func nodeProbes(t *testing.T, ns *netnstest.NS) NodeProbes {
	t.Helper()
	h, err := ns.Handle()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := ns.Do(func() (err error) {
			conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
	listen := func(network, addr string) (*icmp.PacketConn, error) {
		var conn *icmp.PacketConn
		err := ns.Do(func() (err error) {
			conn, err = icmp.ListenPacket(network, addr)
			return err
		})
		return conn, err
	}
	return NodeProbes{ProxyProbe: NewProxyProbe(dial), LinkProbe: LinkProbe{Handle: h}, Pinger: NewPinger(listen)}
}

// checker has the production rise and fall, and a timeout that suits a
// loaded test machine.
func checker(p Probes) *Checker {
	return &Checker{Probes: p, Rise: webfarmv1.ServingRise, Fall: webfarmv1.ServingFall, Timeout: 300 * time.Millisecond}
}

// rounds runs n rounds on target and returns the verdict after each, logging
// how long each took.
func rounds(t *testing.T, c *Checker, target Target, n int) []webfarmv1.ServingStatus {
	t.Helper()
	var out []webfarmv1.ServingStatus
	for range n {
		start := time.Now()
		st, _ := c.Round(context.Background(), []Target{target}, start)
		if len(st) != 1 {
			t.Fatalf("round on one target returned %+v", st)
		}
		t.Logf("round: %v in %v (%s %s)", st[0].Serving, time.Since(start).Round(time.Millisecond), st[0].Reason, st[0].Message)
		out = append(out, st[0])
	}
	return out
}

// wantFallAfter checks that the verdicts serve until the Fall-th, which does
// not serve, for reason.
func wantFallAfter(t *testing.T, got []webfarmv1.ServingStatus, reason string) {
	t.Helper()
	for i, s := range got {
		serving := i < webfarmv1.ServingFall-1
		if s.Serving != serving || (!serving && s.Reason != reason) {
			t.Fatalf("round %d after the failure: serving %v (%s: %s), want serving %v, else %s", i+1, s.Serving, s.Reason, s.Message, serving, reason)
		}
	}
}

func wantServing(t *testing.T, got []webfarmv1.ServingStatus) {
	t.Helper()
	for i, s := range got {
		if !s.Serving {
			t.Fatalf("round %d: not serving: %s: %s", i+1, s.Reason, s.Message)
		}
	}
}

// TestNodeServingProxy: a real HAProxy rendered by the agent's renderer, for
// a farm with no server at all, answers the serving check; killed, the node
// stops serving after Fall rounds.
func TestNodeServingProxy(t *testing.T) {
	ns := netnstest.New(t)
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy is not installed")
	}
	tools, err := ns.Tools(t.TempDir(), "haproxy")
	if err != nil {
		t.Fatal(err)
	}
	p := &haproxy.Process{Binary: tools["haproxy"], Dir: t.TempDir()}
	cfg := haproxy.Config{
		Farms:         []haproxy.Farm{{Key: "default/web", Spec: webfarmv1.WebFarmSpec{Frontend: webfarmv1.FrontendSpec{Port: nodeFarmPort}}}},
		RuntimeSocket: p.RuntimeSocket(),
	}
	rendered, err := haproxy.Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Apply(context.Background(), rendered, haproxy.ErrorFiles(cfg)); err != nil {
		t.Fatal(err)
	}
	c := checker(nodeProbes(t, ns))
	target := Target{Name: "default/vip", Ports: []int32{nodeFarmPort}, Link: "lo"}

	wantServing(t, rounds(t, c, target, webfarmv1.ServingRise))

	killAll(t, ns, "haproxy")
	wantFallAfter(t, rounds(t, c, target, webfarmv1.ServingFall), webfarmv1.ServingReasonProxyNotAnswering)
}

// killAll sends SIGKILL to the processes named comm that run in ns, which
// the test started, and waits until they are gone.
func killAll(t *testing.T, ns *netnstest.NS, comm string) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "pids", ns.Name).Output()
	if err != nil {
		t.Fatal(err)
	}
	var killed []int
	for _, f := range strings.Fields(string(out)) {
		pid, _ := strconv.Atoi(f)
		name, err := os.ReadFile("/proc/" + f + "/comm")
		if err != nil || strings.TrimSpace(string(name)) != comm {
			continue
		}
		if err := unix.Kill(pid, unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed = append(killed, pid)
	}
	if len(killed) == 0 {
		t.Fatalf("no %s runs in %s", comm, ns.Name)
	}
	poll(t, comm+" gone", func() bool {
		for _, pid := range killed {
			if unix.Kill(pid, 0) == nil {
				return false
			}
		}
		return true
	})
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// TestNodeServingLink: the link of the address losing its carrier (the
// peer's end down, as a cable pulled) or set down stops serving after Fall
// rounds; back up, it serves again after Rise.
func TestNodeServingLink(t *testing.T) {
	node, peer := netnstest.New(t), netnstest.New(t)
	if err := netnstest.Link(node, "wfs0", "10.97.0.1/24", peer, "wfs1", "10.97.0.2/24"); err != nil {
		t.Fatal(err)
	}
	c := checker(nodeProbes(t, node))
	// No link name: the link that holds the node address, as by default.
	target := Target{Name: "default/vip", NodeAddress: netip.MustParseAddr("10.97.0.1")}
	waitOperUp(t, node, "wfs0")
	wantServing(t, rounds(t, c, target, 2))

	peer.MustRun(t, "ip", "link", "set", "wfs1", "down")
	wantFallAfter(t, rounds(t, c, target, webfarmv1.ServingFall), webfarmv1.ServingReasonLinkDown)

	peer.MustRun(t, "ip", "link", "set", "wfs1", "up")
	waitOperUp(t, node, "wfs0")
	got := rounds(t, c, target, webfarmv1.ServingRise)
	if got[len(got)-1].Serving != true || (webfarmv1.ServingRise > 1 && got[0].Serving) {
		t.Fatalf("link back up: verdicts %+v, want serving only after %d rounds", got, webfarmv1.ServingRise)
	}

	node.MustRun(t, "ip", "link", "set", "wfs0", "down")
	named := Target{Name: "default/vip", Link: "wfs0", NodeAddress: target.NodeAddress}
	wantFallAfter(t, rounds(t, c, named, webfarmv1.ServingFall), webfarmv1.ServingReasonLinkDown)
}

// waitOperUp waits for the kernel to report the link up (veth carrier comes
// a moment after both ends are set up).
func waitOperUp(t *testing.T, ns *netnstest.NS, name string) {
	t.Helper()
	h, err := ns.Handle()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	poll(t, "link "+name+" up", func() bool {
		link, err := h.LinkByName(name)
		return err == nil && link.Attrs().OperState == netlink.OperUp
	})
}

// TestNodeServingPingTargets: the node reaches a target namespace through a
// bridge in a third one. With one of two targets answering it serves (any);
// with the target's link down, its own link stays up and it stops serving
// after Fall rounds, for the ping targets.
func TestNodeServingPingTargets(t *testing.T) {
	node, hub, target := netnstest.New(t), netnstest.New(t), netnstest.New(t)
	if err := netnstest.Link(node, "wfn0", "10.96.0.1/24", hub, "wfh0", "10.96.1.1/32"); err != nil {
		t.Fatal(err)
	}
	if err := netnstest.Link(target, "wft0", "10.96.0.2/24", hub, "wfh1", "10.96.1.2/32"); err != nil {
		t.Fatal(err)
	}
	hub.MustRun(t, "ip", "link", "add", "br0", "type", "bridge")
	hub.MustRun(t, "ip", "link", "set", "wfh0", "master", "br0")
	hub.MustRun(t, "ip", "link", "set", "wfh1", "master", "br0")
	hub.MustRun(t, "ip", "link", "set", "br0", "up")
	waitOperUp(t, node, "wfn0")

	node.MustRun(t, "ip", "addr", "add", "2001:db8:96::1/64", "dev", "wfn0", "nodad")
	target.MustRun(t, "ip", "addr", "add", "2001:db8:96::2/64", "dev", "wft0", "nodad")

	c, c6 := checker(nodeProbes(t, node)), checker(nodeProbes(t, node))
	answering, silent := netip.MustParseAddr("10.96.0.2"), netip.MustParseAddr("10.96.0.3")
	tgt := Target{Name: "default/vip", Link: "wfn0", PingTargets: []netip.Addr{silent, answering}}
	tgt6 := Target{Name: "default/vip6", Link: "wfn0", PingTargets: []netip.Addr{netip.MustParseAddr("2001:db8:96::2")}}
	wantServing(t, rounds(t, c, tgt, webfarmv1.ServingFall+1))
	wantServing(t, rounds(t, c6, tgt6, webfarmv1.ServingFall+1))

	target.MustRun(t, "ip", "link", "set", "wft0", "down")
	wantFallAfter(t, rounds(t, c, tgt, webfarmv1.ServingFall), webfarmv1.ServingReasonPingTargetsUnreachable)
	wantFallAfter(t, rounds(t, c6, tgt6, webfarmv1.ServingFall), webfarmv1.ServingReasonPingTargetsUnreachable)
}
