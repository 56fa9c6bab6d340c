package deadman

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"
)

// refresherVar, when set, makes the test binary a refresher process
// instead of running tests: "<namespace> <address> <grant> <keepalive>".
const refresherVar = "WEBFARM_DEADMAN_REFRESHER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(refresherVar); spec != "" {
		if err := refresh(spec); err != nil {
			fmt.Fprintln(os.Stderr, "refresher:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// refresh does what an agent holding an address does to the gate: it sets
// it up, then allows the address for grant every keepalive, forever. It
// says "allowed" on stdout after the first grant.
func refresh(spec string) error {
	fields := strings.Fields(spec)
	if len(fields) != 4 {
		return fmt.Errorf("%q: want namespace, address, grant and keepalive", spec)
	}
	nsName := fields[0]
	addr, err := netip.ParseAddr(fields[1])
	if err != nil {
		return err
	}
	grant, err := time.ParseDuration(fields[2])
	if err != nil {
		return err
	}
	keepalive, err := time.ParseDuration(fields[3])
	if err != nil {
		return err
	}
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		return err
	}
	g, err := New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return err
	}
	if err := g.Setup(); err != nil {
		return err
	}
	tick := time.NewTicker(keepalive)
	for first := true; ; first = false {
		if err := g.Allow(addr, grant); err != nil {
			return err
		}
		if first {
			fmt.Println("allowed")
		}
		<-tick.C
	}
}

// startRefresher runs a refresher for vip4 in the node namespace and waits
// until it allowed the address once.
func (n *testNet) startRefresher(t *testing.T, grant, keepalive time.Duration) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s %s", refresherVar, n.node.Name, vip4, grant, keepalive))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "allowed" {
		t.Fatalf("refresher said %q (%v), want \"allowed\"", line, err)
	}
	return cmd
}

// silence is when the address fell silent after a process was stopped:
// lastAnswer is when the last request that got an answer was sent,
// firstMiss when the first request of the silence that followed was.
type silence struct{ lastAnswer, firstMiss time.Duration }

// confirmSilence is how long the address must stay silent to count as
// silent for good.
const confirmSilence = 500 * time.Millisecond

// awaitSilence probes vip4 with ARP from stopped on, until it stayed
// silent for confirmSilence or until limit.
func (n *testNet) awaitSilence(t *testing.T, stopped time.Time, limit time.Duration) (silence, bool) {
	t.Helper()
	var s silence
	missing := false
	for time.Since(stopped) < limit {
		sent := time.Since(stopped)
		switch {
		case n.answersARP(t, vip4):
			s.lastAnswer, missing = sent, false
		case !missing:
			s.firstMiss, missing = sent, true
		case sent-s.firstMiss >= confirmSilence:
			return s, true
		}
	}
	return s, false
}

// TestNodeGateSIGSTOP: a process refreshes the gate every keepalive, as
// the agent does; once it is stopped, the address falls silent within its
// grant, and answers again when the process resumes. Killed, the same.
func TestNodeGateSIGSTOP(t *testing.T) {
	for _, tt := range []struct{ grant, keepalive time.Duration }{
		{500 * time.Millisecond, 100 * time.Millisecond},
		{2 * time.Second, 500 * time.Millisecond},
	} {
		t.Run(fmt.Sprintf("grant %v", tt.grant), func(t *testing.T) {
			testStopped(t, tt.grant, tt.keepalive)
		})
	}
}

func testStopped(t *testing.T, grant, keepalive time.Duration) {
	// The time an answer may take to come back, on a loaded machine.
	const slack = 200 * time.Millisecond
	n := newTestNet(t)
	refresher := n.startRefresher(t, grant, keepalive)

	// Refreshed, the address answers well beyond one grant. The signal
	// comes at a random point between two refreshes.
	start, refreshed := time.Now(), 2*grant+rand.N(keepalive)
	for time.Since(start) < refreshed {
		if !n.answersARP(t, vip4) {
			t.Fatalf("%s unanswered %v after the refresher started, with a grant of %v", vip4, time.Since(start), grant)
		}
	}

	for _, sig := range []syscall.Signal{syscall.SIGSTOP, syscall.SIGKILL} {
		if err := refresher.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		s, ok := n.awaitSilence(t, stopped, grant+slack+confirmSilence+2*time.Second)
		t.Logf("%v with grant %v, keepalive %v: last answered request sent %v after the signal, silent from %v",
			sig, grant, keepalive, s.lastAnswer.Round(time.Millisecond), s.firstMiss.Round(time.Millisecond))
		if !ok {
			t.Fatalf("%s still answering %v after %v", vip4, time.Since(stopped), sig)
		}
		if s.lastAnswer > grant+slack {
			t.Errorf("%s answered a request sent %v after %v, beyond its grant of %v", vip4, s.lastAnswer, sig, grant)
		}
		if sig == syscall.SIGSTOP {
			if err := refresher.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the address answering once the refresher resumed", func() bool { return n.answersARP(t, vip4) })
		}
	}
}
