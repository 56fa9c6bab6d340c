// Package netnstest gives node tests throwaway network namespaces: created by
// the test, with every process inside them killed and the namespace removed
// when the test ends, pass or fail.
//
// Tests that use it are named TestNode… and run only as root with
// WEBFARM_NODE_TESTS=1 (as `make test-node` sets).
package netnstest

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The main thread stands for the whole process in /proc: /proc/<pid>/ns/net
// is its namespace, and `ip netns pids` reads that. Do moves the thread it
// runs on into a namespace; were that the main thread, the process would be
// listed as one of the namespace's, and a teardown that kills a namespace's
// processes would kill it (a test binary was SIGKILLed so by hack/cluster.sh
// down, its main thread dialing in wfc-client). Locked to the main goroutine
// from init on, the main thread runs no other goroutine: Do never moves it.
func init() { runtime.LockOSThread() }

// EnabledVar is the environment variable that enables node tests.
const EnabledVar = "WEBFARM_NODE_TESTS"

// Prefix starts the name of every namespace these helpers create.
const Prefix = "wft-"

// Skip skips t unless node tests are enabled and the test runs as root.
func Skip(t testing.TB) {
	t.Helper()
	if os.Getenv(EnabledVar) != "1" {
		t.Skipf("node test: set %s=1 and run as root (make test-node)", EnabledVar)
	}
	if os.Geteuid() != 0 {
		t.Skip("node test: needs root")
	}
}

// NS is a network namespace created by a test.
type NS struct {
	Name string
}

// New creates a namespace with its loopback up, and removes it when t ends.
func New(t testing.TB) *NS {
	t.Helper()
	Skip(t)
	ns, err := Create()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Delete(); err != nil {
			t.Errorf("removing namespace %s: %v", ns.Name, err)
		}
	})
	return ns
}

// Create creates a namespace outside a test (benchmarks, the testbed). The
// caller deletes it.
func Create() (*NS, error) {
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return nil, err
	}
	ns := &NS{Name: Prefix + hex.EncodeToString(suffix)}
	if out, err := exec.Command("ip", "netns", "add", ns.Name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("creating namespace %s: %v: %s", ns.Name, err, out)
	}
	if _, err := ns.Run("ip", "link", "set", "lo", "up"); err != nil {
		_ = ns.Delete()
		return nil, err
	}
	return ns, nil
}

// Delete kills every process in the namespace and removes it.
func (ns *NS) Delete() error {
	if out, err := exec.Command("ip", "netns", "pids", ns.Name).Output(); err == nil {
		for _, pid := range strings.Fields(string(out)) {
			_ = exec.Command("kill", "-9", pid).Run()
		}
	}
	if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// Command returns a command that runs inside the namespace.
func (ns *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Run runs a command inside the namespace and returns its combined output.
func (ns *NS) Run(name string, args ...string) (string, error) {
	out, err := ns.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %v: %s", name, strings.Join(args, " "), ns.Name, err, out)
	}
	return string(out), nil
}

// MustRun runs a command inside the namespace and fails t if it fails.
func (ns *NS) MustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := ns.Run(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Handle opens a netlink handle inside the namespace; the caller closes it.
func (ns *NS) Handle() (*netlink.Handle, error) {
	h, err := netns.GetFromName(ns.Name)
	if err != nil {
		return nil, fmt.Errorf("opening namespace %s: %w", ns.Name, err)
	}
	defer h.Close()
	return netlink.NewHandleAt(h)
}

// MustListen listens on TCP addr inside the namespace until t ends, and
// fails t if it cannot.
func (ns *NS) MustListen(t testing.TB, addr netip.AddrPort) net.Listener {
	t.Helper()
	var l net.Listener
	err := ns.Do(func() (err error) {
		l, err = net.Listen("tcp", addr.String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// Do runs fn on an OS thread that has entered the namespace (for sockets that
// must be opened inside it; they stay bound to it afterwards).
func (ns *NS) Do(fn func() error) error {
	target, err := netns.GetFromName(ns.Name)
	if err != nil {
		return fmt.Errorf("opening namespace %s: %w", ns.Name, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		origin, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("reading this thread's namespace: %w", err)
			return
		}
		defer origin.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering namespace %s: %w", ns.Name, err)
			return
		}
		errc <- fn()
		// Only a thread back in its own namespace may serve other goroutines;
		// one that cannot go back stays locked and dies with this goroutine.
		if netns.Set(origin) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return <-errc
}

// Tools writes, in dir, a wrapper script per program that runs it inside the
// namespace, and returns their paths by program name — for libraries that
// take the path of a binary, such as go-iptables.
func (ns *NS) Tools(dir string, programs ...string) (map[string]string, error) {
	paths := make(map[string]string, len(programs))
	for _, p := range programs {
		path := filepath.Join(dir, ns.Name+"-"+p)
		script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", ns.Name, p)
		if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
			return nil, err
		}
		paths[p] = path
	}
	return paths, nil
}

// Link connects two namespaces with a veth pair, giving each end an address
// (CIDR notation, e.g. "10.77.0.1/24") and bringing both up.
func Link(a *NS, aIf, aAddr string, b *NS, bIf, bAddr string) error {
	tmpA, tmpB := "wft"+aIf, "wft"+bIf
	if len(tmpA) > 15 || len(tmpB) > 15 {
		return fmt.Errorf("interface names %q, %q too long", aIf, bIf)
	}
	steps := [][]string{
		{"ip", "link", "add", tmpA, "type", "veth", "peer", "name", tmpB},
		{"ip", "link", "set", tmpA, "netns", a.Name, "name", aIf},
		{"ip", "link", "set", tmpB, "netns", b.Name, "name", bIf},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			_ = exec.Command("ip", "link", "del", tmpA).Run()
			return fmt.Errorf("%s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	for _, end := range []struct {
		ns         *NS
		link, addr string
	}{{a, aIf, aAddr}, {b, bIf, bAddr}} {
		if _, err := end.ns.Run("ip", "addr", "add", end.addr, "dev", end.link); err != nil {
			return err
		}
		if _, err := end.ns.Run("ip", "link", "set", end.link, "up"); err != nil {
			return err
		}
	}
	return nil
}

// PacketReadTimeout bounds each read on a PacketSocket, so that a reader
// loop notices in time that it should stop.
const PacketReadTimeout = 50 * time.Millisecond

// PacketSocket opens, inside the namespace, a packet socket bound to link
// that receives the frames of protocol (an ETH_P_* value): whole frames for
// sockType unix.SOCK_RAW, frames without their link header for
// unix.SOCK_DGRAM. Reads time out after PacketReadTimeout. The caller closes
// it.
func (ns *NS) PacketSocket(link string, sockType int, protocol uint16) (int, error) {
	fd := -1
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(link)
		if err != nil {
			return err
		}
		proto := htons(protocol)
		if fd, err = unix.Socket(unix.AF_PACKET, sockType|unix.SOCK_CLOEXEC, int(proto)); err != nil {
			return err
		}
		tv := unix.NsecToTimeval(int64(PacketReadTimeout))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index})
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("opening a packet socket on %s in %s: %w", link, ns.Name, err)
	}
	return fd, nil
}

// htons converts to network byte order, as sockaddr_ll wants its protocol.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
