package iptables

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/webfarm/webfarm/internal/netnstest"
)

// nsTools returns tools of family f that act inside ns: scripts that run
// the real programs under `ip netns exec`.
func nsTools(t testing.TB, ns *netnstest.NS, f Family) Tools {
	t.Helper()
	host := HostTools(f)
	paths, err := ns.Tools(t.TempDir(), host.IPTables, host.Restore)
	if err != nil {
		t.Fatal(err)
	}
	return Tools{Family: f, IPTables: paths[host.IPTables], Restore: paths[host.Restore]}
}

// newNSChain returns a drain chain for both families inside a new namespace.
func newNSChain(t testing.TB) (*netnstest.NS, *DrainChain) {
	t.Helper()
	ns := netnstest.New(t)
	d, err := New(nsTools(t, ns, IPv4), nsTools(t, ns, IPv6))
	if err != nil {
		t.Fatal(err)
	}
	return ns, d
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// save returns every table of family f in ns as iptables-save prints it,
// without the timestamped comments and the packet counters that differ
// from one run to the next.
func save(t testing.TB, ns *netnstest.NS, f Family) string {
	t.Helper()
	program := "iptables-save"
	if f == IPv6 {
		program = "ip6tables-save"
	}
	var kept []string
	for _, l := range strings.Split(ns.MustRun(t, program), "\n") {
		if !strings.HasPrefix(l, "#") {
			kept = append(kept, counters.ReplaceAllString(l, "[0:0]"))
		}
	}
	return strings.Join(kept, "\n")
}

// outsideOurs drops from an iptables-save text our chain, its rules and the
// jumps to it: what is left belongs to others.
func outsideOurs(saved string) string {
	var kept []string
	for _, l := range strings.Split(saved, "\n") {
		if strings.HasPrefix(l, ":"+Chain+" ") || strings.HasPrefix(l, "-A "+Chain+" ") ||
			strings.HasSuffix(l, " -j "+Chain) {
			continue
		}
		kept = append(kept, l)
	}
	return strings.Join(kept, "\n")
}

func ipt(f Family) string {
	if f == IPv6 {
		return "ip6tables"
	}
	return "iptables"
}

// mustSync syncs want and fails t on error.
func mustSync(t testing.TB, d *DrainChain, want []Rule) {
	t.Helper()
	if err := d.Sync(context.Background(), want); err != nil {
		t.Fatal(err)
	}
}

var dualStack = []Rule{
	rule("10.0.0.2", 5381, 5380, "default/shop front2"),
	rule("10.0.0.1", 5381, 5380, "default/shop front1"),
	rule("fd00::1", 5381, 5380, "default/shop front1"),
}

func TestNodeSyncWritesChainAndJump(t *testing.T) {
	ns, d := newNSChain(t)
	mustSync(t, d, dualStack)

	tests := []struct {
		family Family
		chain  string
	}{
		{IPv4, `-N WEBFARM-DRAIN
-A WEBFARM-DRAIN -d 10.0.0.1/32 -p tcp -m comment --comment "webfarm: default/shop front1" -m tcp --dport 5381 -j DNAT --to-destination 10.0.0.1:5380
-A WEBFARM-DRAIN -d 10.0.0.2/32 -p tcp -m comment --comment "webfarm: default/shop front2" -m tcp --dport 5381 -j DNAT --to-destination 10.0.0.2:5380
`},
		{IPv6, `-N WEBFARM-DRAIN
-A WEBFARM-DRAIN -d fd00::1/128 -p tcp -m comment --comment "webfarm: default/shop front1" -m tcp --dport 5381 -j DNAT --to-destination [fd00::1]:5380
`},
	}
	for _, tt := range tests {
		t.Run(tt.family.String(), func(t *testing.T) {
			if got := ns.MustRun(t, ipt(tt.family), "-t", "nat", "-S", Chain); got != tt.chain {
				t.Errorf("chain =\n%s\nwant\n%s", got, tt.chain)
			}
			wantOutput := "-P OUTPUT ACCEPT\n-A OUTPUT -m comment --comment \"webfarm: drain rules of webfarm-agent\" -j WEBFARM-DRAIN\n"
			if got := ns.MustRun(t, ipt(tt.family), "-t", "nat", "-S", "OUTPUT"); got != wantOutput {
				t.Errorf("OUTPUT =\n%s\nwant\n%s", got, wantOutput)
			}
		})
	}
}

// TestNodeResyncWritesNothing checks that the rendering matches what the
// kernel prints back, which is what keeps a periodic Sync read-only.
func TestNodeResyncWritesNothing(t *testing.T) {
	_, d := newNSChain(t)
	mustSync(t, d, dualStack)
	for _, c := range d.families {
		want, err := normalize(dualStack, c.family)
		if err != nil {
			t.Fatal(err)
		}
		cur, err := c.read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if payload := syncPayload(Chain, cur, want); payload != "" {
			t.Errorf("%s: resync would write\n%s", c.family, payload)
		}
	}
}

func TestNodeSyncTwiceLeavesNoDuplicates(t *testing.T) {
	ns, d := newNSChain(t)
	mustSync(t, d, dualStack)
	first := map[Family]string{IPv4: save(t, ns, IPv4), IPv6: save(t, ns, IPv6)}
	for range 3 {
		mustSync(t, d, dualStack)
	}
	for f, want := range first {
		if got := save(t, ns, f); got != want {
			t.Errorf("%s after resync:\n%s\nwant\n%s", f, got, want)
		}
	}
}

func TestNodeSyncRepairsTampering(t *testing.T) {
	jumpArgs := []string{"-m", "comment", "--comment", "webfarm: drain rules of webfarm-agent", "-j", Chain}
	tests := []struct {
		name   string
		tamper [][]string // iptables/ip6tables arguments
	}{
		{"chain flushed", [][]string{{"-t", "nat", "-F", Chain}}},
		{"jump deleted", [][]string{append([]string{"-t", "nat", "-D", "OUTPUT"}, jumpArgs...)}},
		{"jump copied to the start of OUTPUT", [][]string{append([]string{"-t", "nat", "-I", "OUTPUT"}, jumpArgs...)}},
		{"jump copied to the end of OUTPUT", [][]string{
			append([]string{"-t", "nat", "-A", "OUTPUT"}, jumpArgs...),
		}},
		{"chain and jump deleted", [][]string{
			append([]string{"-t", "nat", "-D", "OUTPUT"}, jumpArgs...),
			{"-t", "nat", "-F", Chain},
			{"-t", "nat", "-X", Chain},
		}},
		{"rule of ours deleted", [][]string{{"-t", "nat", "-D", Chain, "1"}}},
		{"foreign rule added to our chain", [][]string{{"-t", "nat", "-I", Chain, "-j", "RETURN"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, d := newNSChain(t)
			for _, f := range []Family{IPv4, IPv6} {
				ns.MustRun(t, ipt(f), "-t", "nat", "-A", "OUTPUT", "-p", "udp", "-j", "RETURN")
			}
			mustSync(t, d, dualStack)
			for _, f := range []Family{IPv4, IPv6} {
				synced := save(t, ns, f)
				for _, args := range tt.tamper {
					ns.MustRun(t, ipt(f), args...)
				}
				if save(t, ns, f) == synced {
					t.Fatalf("%s: tampering changed nothing", f)
				}
				mustSync(t, d, dualStack)
				if got := save(t, ns, f); got != synced {
					t.Errorf("%s after repair:\n%s\nwant\n%s", f, got, synced)
				}
			}
		})
	}
}

// addForeignRules fills ns with rules and chains that are not ours, some of
// them close to ours in name or shape.
func addForeignRules(t testing.TB, ns *netnstest.NS) {
	t.Helper()
	for _, f := range []Family{IPv4, IPv6} {
		dst := map[Family]string{IPv4: "10.9.9.9", IPv6: "fd00:9::9"}[f]
		for _, args := range [][]string{
			{"-t", "nat", "-N", "WEBFARM-OTHER"},
			{"-t", "nat", "-N", "FOREIGN"},
			{"-t", "nat", "-A", "FOREIGN", "-p", "tcp", "--dport", "5381", "-j", "RETURN"},
			{"-t", "nat", "-A", "OUTPUT", "-d", dst, "-p", "tcp", "--dport", "80", "-j", "DNAT", "--to-destination", dst},
			{"-t", "nat", "-A", "OUTPUT", "-j", "FOREIGN"},
			{"-t", "nat", "-I", "OUTPUT", "-m", "comment", "--comment", "mentions -j WEBFARM-DRAIN", "-j", "WEBFARM-OTHER"},
			{"-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "5381", "-j", "REDIRECT", "--to-ports", "5380"},
			{"-t", "filter", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"},
			{"-t", "filter", "-A", "OUTPUT", "-d", dst, "-j", "DROP"},
		} {
			ns.MustRun(t, ipt(f), args...)
		}
	}
}

func TestNodeForeignRulesUntouched(t *testing.T) {
	ns, d := newNSChain(t)
	addForeignRules(t, ns)
	before := map[Family]string{IPv4: save(t, ns, IPv4), IPv6: save(t, ns, IPv6)}

	steps := []struct {
		name string
		do   func() error
	}{
		{"sync", func() error { return d.Sync(context.Background(), dualStack) }},
		{"sync with a front drained", func() error { return d.Sync(context.Background(), dualStack[1:]) }},
		{"sync after our chain was flushed", func() error {
			ns.MustRun(t, "iptables", "-t", "nat", "-F", Chain)
			return d.Sync(context.Background(), dualStack)
		}},
		{"cleanup", func() error { return d.Cleanup(context.Background()) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for f, want := range before {
			if got := outsideOurs(save(t, ns, f)); got != outsideOurs(want) {
				t.Errorf("%s: %s rules of others changed:\n%s\nwant\n%s", s.name, f, got, want)
			}
		}
	}
	// After cleanup, nothing of ours is left either.
	for f, want := range before {
		if got := save(t, ns, f); got != want {
			t.Errorf("%s after cleanup:\n%s\nwant\n%s", f, got, want)
		}
	}
}

func TestNodeCleanupLeavesNothingOfOurs(t *testing.T) {
	ns, d := newNSChain(t)
	// Create the nat tables, which outlive our chains, before the snapshot.
	for _, f := range []Family{IPv4, IPv6} {
		ns.MustRun(t, ipt(f), "-t", "nat", "-P", "OUTPUT", "ACCEPT")
	}
	pristine := map[Family]string{IPv4: save(t, ns, IPv4), IPv6: save(t, ns, IPv6)}
	ctx := context.Background()
	if err := d.Cleanup(ctx); err != nil {
		t.Fatalf("cleanup with nothing to clean: %v", err)
	}
	mustSync(t, d, dualStack)
	// A second jump written by hand, and a chain left by an older agent.
	ns.MustRun(t, "iptables", "-t", "nat", "-N", Chain+"-OLD")
	ns.MustRun(t, "iptables", "-t", "nat", "-A", "OUTPUT", "-j", Chain+"-OLD")
	ns.MustRun(t, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-j", Chain)
	for range 2 {
		if err := d.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		for f, want := range pristine {
			if got := save(t, ns, f); got != want {
				t.Errorf("%s after cleanup:\n%s\nwant\n%s", f, got, want)
			}
		}
	}
}

func TestNodeSyncRejectsRulesWithoutTools(t *testing.T) {
	ns := netnstest.New(t)
	d, err := New(nsTools(t, ns, IPv4))
	if err != nil {
		t.Fatal(err)
	}
	before := save(t, ns, IPv4)
	if err := d.Sync(context.Background(), dualStack); err == nil || !strings.Contains(err.Error(), "no tools for IPv6") {
		t.Errorf("Sync() error = %v, want no tools for IPv6", err)
	}
	if got := save(t, ns, IPv4); got != before {
		t.Errorf("a rejected Sync wrote:\n%s", got)
	}
}

// TestNodeDrainTraffic checks the trick itself, as HAProxy on one node sees
// another front: a connection to the front's drain port reaches its web
// server while the rule exists, and is refused once the front is drained.
func TestNodeDrainTraffic(t *testing.T) {
	tests := []struct {
		family          Family
		nodeAddr, front string
		prefixLen       string
	}{
		{family: IPv4, nodeAddr: "10.77.0.1", front: "10.77.0.2", prefixLen: "/24"},
		{family: IPv6, nodeAddr: "fd00:77::1", front: "fd00:77::2", prefixLen: "/64"},
	}
	for _, tt := range tests {
		t.Run(tt.family.String(), func(t *testing.T) {
			node, d := newNSChain(t)
			frontNS := netnstest.New(t)
			// Link names its interfaces in the host namespace for a moment:
			// these are unlikely to collide with other packages' tests.
			if err := netnstest.Link(node, "iptnode", "10.77.0.1/24", frontNS, "iptfront", "10.77.0.2/24"); err != nil {
				t.Fatal(err)
			}
			if tt.family == IPv6 {
				node.MustRun(t, "ip", "addr", "add", tt.nodeAddr+tt.prefixLen, "dev", "iptnode", "nodad")
				frontNS.MustRun(t, "ip", "addr", "add", tt.front+tt.prefixLen, "dev", "iptfront", "nodad")
			}

			front := netip.MustParseAddr(tt.front)
			webAddr, drainAddr := netip.AddrPortFrom(front, 5380), netip.AddrPortFrom(front, 5381)
			web := listen(t, frontNS, webAddr)
			serving := []Rule{{Front: front, DrainPort: 5381, WebPort: 5380, Comment: "test front"}}

			mustSync(t, d, serving)
			if err := dial(node, drainAddr); err != nil {
				t.Fatalf("serving: dialing %s: %v", drainAddr, err)
			}
			if got := nextAccepted(t, web); got != webAddr {
				t.Fatalf("serving: connection reached %s, want %s", got, webAddr)
			}

			mustSync(t, d, nil)
			if err := dial(node, drainAddr); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("drained: dialing %s: %v, want connection refused", drainAddr, err)
			}

			mustSync(t, d, serving)
			if err := dial(node, drainAddr); err != nil {
				t.Fatalf("serving again: dialing %s: %v", drainAddr, err)
			}
			if got := nextAccepted(t, web); got != webAddr {
				t.Fatalf("serving again: connection reached %s, want %s", got, webAddr)
			}
		})
	}
}

// listen serves TCP on addr inside ns and reports the local address of each
// connection it accepts.
func listen(t *testing.T, ns *netnstest.NS, addr netip.AddrPort) <-chan netip.AddrPort {
	t.Helper()
	l := ns.MustListen(t, addr)
	accepted := make(chan netip.AddrPort, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c.LocalAddr().(*net.TCPAddr).AddrPort()
			c.Close()
		}
	}()
	return accepted
}

// nextAccepted returns the address of the next connection the listener
// accepted.
func nextAccepted(t *testing.T, accepted <-chan netip.AddrPort) netip.AddrPort {
	t.Helper()
	select {
	case a := <-accepted:
		return a
	case <-time.After(5 * time.Second):
		t.Fatal("the listener accepted no connection")
		return netip.AddrPort{}
	}
}

// dial connects to addr from inside ns, then hangs up.
func dial(ns *netnstest.NS, addr netip.AddrPort) error {
	return ns.Do(func() error {
		c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// BenchmarkNodeSync measures Sync for farms of 10, 100 and 1,000 fronts:
// the first sync (empty namespace), a resync that finds the chain as wanted
// (what a periodic Sync costs), and a sync after one front was drained.
func BenchmarkNodeSync(b *testing.B) {
	for _, fronts := range []int{10, 100, 1000} {
		want := make([]Rule, fronts)
		for i := range want {
			want[i] = Rule{
				Front:     netip.AddrFrom4([4]byte{10, 1, byte(i / 256), byte(i % 256)}),
				DrainPort: 5381, WebPort: 5380,
				Comment: fmt.Sprintf("default/shop front%d", i),
			}
		}
		ctx := context.Background()
		run := func(name string, prepare func(*DrainChain), rules []Rule) {
			b.Run(fmt.Sprintf("fronts=%d/%s", fronts, name), func(b *testing.B) {
				ns := netnstest.New(b)
				d, err := New(nsTools(b, ns, IPv4))
				if err != nil {
					b.Fatal(err)
				}
				var total time.Duration
				for range b.N {
					prepare(d)
					start := time.Now()
					if err := d.Sync(ctx, rules); err != nil {
						b.Fatal(err)
					}
					total += time.Since(start)
				}
				b.ReportMetric(total.Seconds()*1000/float64(b.N), "ms/sync")
				b.ReportMetric(float64(fronts), "fronts")
			})
		}
		run("first", func(d *DrainChain) {
			if err := d.Cleanup(ctx); err != nil {
				b.Fatal(err)
			}
		}, want)
		run("resync", func(d *DrainChain) { mustSync(b, d, want) }, want)
		run("drain-one", func(d *DrainChain) { mustSync(b, d, want) }, want[1:])
	}
}
