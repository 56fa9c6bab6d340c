package haproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/netnstest"
)

// Addresses and ports inside the test's own namespace.
const (
	nodeWebPort   = 5080
	nodeDrainPort = 5081
	nodeFarmPort  = 8080
	nodeEmptyPort = 8081
	farmURL       = "http://10.98.0.1:8080/"
	nodeUser      = `o'neil`
	nodePassword  = `p#ss w$rd\'x`
	minReloads    = 5
)

var nodeFronts = []Front{
	{Name: "front1", Address: netip.MustParseAddr("10.98.0.1"), Cookie: "cookie1"},
	{Name: "front2", Address: netip.MustParseAddr("10.98.0.2"), Cookie: "cookie2"},
}

// newNamespace creates a namespace named with this package's prefix (wfh-),
// its loopback holding the fronts' addresses, removed when t ends.
func newNamespace(t testing.TB) *netnstest.NS {
	t.Helper()
	ns := netnstest.New(t)
	for _, f := range nodeFronts {
		ns.MustRun(t, "ip", "addr", "add", f.Address.String()+"/32", "dev", "lo")
	}
	return ns
}

// webServer is one front's web server: it answers with its name, on the web
// port and on the drain port (standing for the agent's DNAT rule).
type webServer struct {
	name  string
	drain net.Listener
	hold  chan struct{} // /hold requests block until it is closed

	releaseOnce sync.Once
}

func startWebServer(t *testing.T, ns *netnstest.NS, f Front) *webServer {
	t.Helper()
	w := &webServer{name: f.Name, hold: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/hold", func(rw http.ResponseWriter, r *http.Request) {
		select {
		case <-w.hold:
		case <-r.Context().Done():
		}
		fmt.Fprint(rw, w.name)
	})
	mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("X-Seen-Forwarded-For", r.Header.Get("X-Forwarded-For"))
		fmt.Fprint(rw, w.name)
	})
	srv := &http.Server{Handler: mux}
	var web net.Listener
	err := ns.Do(func() error {
		var err error
		if web, err = net.Listen("tcp", netip.AddrPortFrom(f.Address, nodeWebPort).String()); err != nil {
			return err
		}
		w.drain, err = net.Listen("tcp", netip.AddrPortFrom(f.Address, nodeDrainPort).String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(web) }()
	go func() { _ = srv.Serve(w.drain) }()
	t.Cleanup(func() {
		w.release()
		_ = srv.Close()
	})
	return w
}

func (w *webServer) release() {
	w.releaseOnce.Do(func() { close(w.hold) })
}

// nsClient is an HTTP client whose connections are opened inside ns.
func nsClient(ns *netnstest.NS, withJar bool) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := ns.Do(func() error {
			var err error
			conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
	c := &http.Client{Transport: &http.Transport{DialContext: dial}, Timeout: 5 * time.Second}
	if withJar {
		c.Jar, _ = cookiejar.New(nil)
	}
	return c
}

// get returns the body of a GET through HAProxy, failing on anything but 200.
func get(c *http.Client, url string) (string, *http.Response, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return string(body), resp, err
}

func nodeConfig(p *Process, maxConn int32) Config {
	second := metav1.Duration{Duration: 100 * time.Millisecond}
	farm := Farm{
		Key: "default/web",
		Spec: webfarmv1.WebFarmSpec{
			Frontend:    webfarmv1.FrontendSpec{Port: nodeFarmPort, MaxConn: maxConn},
			Backend:     webfarmv1.BackendSpec{WebPort: nodeWebPort, DrainPort: nodeDrainPort},
			HealthCheck: webfarmv1.HealthCheckSpec{Interval: second, Rise: 1, Fall: 3},
			Stats:       &webfarmv1.StatsSpec{Enabled: true, URI: "/stats"},
		},
		Fronts: nodeFronts,
		Stats:  &Credentials{User: nodeUser, Password: nodePassword},
	}
	empty := Farm{
		Key:        "default/empty",
		Spec:       webfarmv1.WebFarmSpec{Frontend: webfarmv1.FrontendSpec{Port: nodeEmptyPort}},
		ErrorPages: map[int][]byte{503: []byte("<html>sorry, no front</html>")},
	}
	return Config{Farms: []Farm{farm, empty}, RuntimeSocket: p.RuntimeSocket()}
}

func apply(t testing.TB, p *Process, c Config) bool {
	t.Helper()
	cfg, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	reloaded, err := p.Apply(context.Background(), cfg, Files(c))
	if err != nil {
		t.Fatal(err)
	}
	return reloaded
}

// waitStatus polls Stats until want(server stats by name) holds.
func waitStatus(t *testing.T, p *Process, what string, want func(map[string]ServerStat) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last []ServerStat
	err := poll(ctx, what, func() (bool, error) {
		stats, err := p.Stats(ctx)
		if err != nil {
			return false, nil
		}
		last = stats
		byName := map[string]ServerStat{}
		for _, s := range stats {
			if s.Backend == BackendName("default/web") {
				byName[s.Server] = s
			}
		}
		return want(byName), nil
	})
	if err != nil {
		t.Fatalf("%v; last stats: %+v", err, last)
	}
}

func allUp(s map[string]ServerStat) bool {
	for _, f := range nodeFronts {
		main, backup := ServerNames(f.Name)
		if s[main].Status != "UP" || s[backup].Status != "UP" {
			return false
		}
	}
	return true
}

// newNodeProcess returns a Process that runs haproxy inside ns, stopped
// when t ends; t is skipped when haproxy is not installed.
func newNodeProcess(t *testing.T, ns *netnstest.NS) *Process {
	t.Helper()
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy is not installed")
	}
	tools, err := ns.Tools(t.TempDir(), "haproxy")
	if err != nil {
		t.Fatal(err)
	}
	p := &Process{Binary: tools["haproxy"], Dir: t.TempDir()}
	t.Cleanup(func() {
		if err := p.Stop(context.Background()); err != nil {
			t.Errorf("stopping haproxy: %v", err)
		}
	})
	return p
}

func TestNodeProcess(t *testing.T) {
	ns := newNamespace(t)
	p := newNodeProcess(t, ns)
	servers := map[string]*webServer{}
	for _, f := range nodeFronts {
		servers[f.Name] = startWebServer(t, ns, f)
	}

	if !apply(t, p, nodeConfig(p, 2000)) {
		t.Fatal("Apply did not start haproxy")
	}
	if !p.Running(context.Background()) {
		t.Fatal("Running is false after Apply")
	}
	waitStatus(t, p, "every server UP", allUp)
	if apply(t, p, nodeConfig(p, 2000)) {
		t.Error("Apply reloaded an identical configuration")
	}

	t.Run("balance", func(t *testing.T) { testBalance(t, ns) })
	t.Run("sticky cookie", func(t *testing.T) { testSticky(t, ns) })
	t.Run("stats page and error page", func(t *testing.T) { testPages(t, ns) })
	t.Run("sessions", func(t *testing.T) { testSessions(t, ns, p, servers["front1"]) })
	t.Run("drain", func(t *testing.T) { testDrain(t, ns, p) })
	t.Run("bad config refused", func(t *testing.T) { testRefused(t, ns, p) })

	t.Run("reload failure keeps the running config", func(t *testing.T) { testReloadFailure(t, ns, p) })

	adopted := &Process{Binary: p.Binary, Dir: p.Dir}
	t.Run("adopt", func(t *testing.T) { testAdopt(t, adopted, p) })
	t.Run("reload under load", func(t *testing.T) { testReloadUnderLoad(t, ns, adopted) })
	t.Run("drain port closed", func(t *testing.T) { testDrainPortClosed(t, ns, adopted, servers["front1"]) })

	t.Run("stop", func(t *testing.T) {
		pid, _ := adopted.masterPID()
		if err := adopted.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if adopted.Running(context.Background()) || processAlive(pid) {
			t.Fatalf("haproxy master %d still runs after Stop", pid)
		}
	})
}

func testBalance(t *testing.T, ns *netnstest.NS) {
	c := nsClient(ns, false)
	seen := map[string]int{}
	for range 20 {
		body, resp, err := get(c, farmURL)
		if err != nil {
			t.Fatal(err)
		}
		seen[body]++
		if resp.Header.Get("X-Seen-Forwarded-For") == "" {
			t.Fatal("the web server saw no X-Forwarded-For (option forwardfor)")
		}
	}
	if seen["front1"] != 10 || seen["front2"] != 10 {
		t.Fatalf("roundrobin over two fronts served %v", seen)
	}
}

func testSticky(t *testing.T, ns *netnstest.NS) {
	c := nsClient(ns, true)
	first, _, err := get(c, farmURL)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		body, _, err := get(c, farmURL)
		if err != nil {
			t.Fatal(err)
		}
		if body != first {
			t.Fatalf("a client holding the cookie of %s was served by %s", first, body)
		}
	}
}

func testPages(t *testing.T, ns *netnstest.NS) {
	c := nsClient(ns, false)
	req, _ := http.NewRequest(http.MethodGet, farmURL+"stats", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("stats page without credentials: %s", resp.Status)
	}
	req.SetBasicAuth(nodeUser, nodePassword)
	if resp, err = c.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("stats page with the quoted credentials: %s", resp.Status)
	}
	resp, err = c.Get(fmt.Sprintf("http://10.98.0.1:%d/", nodeEmptyPort))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "sorry, no front") {
		t.Errorf("farm without fronts answered %s %q, not the 503 error page", resp.Status, body)
	}
}

func testSessions(t *testing.T, ns *netnstest.NS, p *Process, front1 *webServer) {
	c := nsClient(ns, false)
	c.Jar, _ = cookiejar.New(nil)
	u, _ := http.NewRequest(http.MethodGet, farmURL, nil)
	c.Jar.SetCookies(u.URL, []*http.Cookie{{Name: "SERVERID", Value: "cookie1"}})
	done := make(chan error, 1)
	go func() {
		body, _, err := get(c, farmURL+"hold")
		if err == nil && body != "front1" {
			err = fmt.Errorf("held request served by %s", body)
		}
		done <- err
	}()
	waitStatus(t, p, "a session on front1", func(s map[string]ServerStat) bool { return s["front1"].Sessions == 1 })
	front1.release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitStatus(t, p, "no session on front1", func(s map[string]ServerStat) bool { return s["front1"].Sessions == 0 })
}

func testDrain(t *testing.T, ns *netnstest.NS, p *Process) {
	backend := BackendName("default/web")
	if err := p.SetDrain(context.Background(), backend, "front1", true); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, p, "front1 DRAIN", func(s map[string]ServerStat) bool { return s["front1"].Status == "DRAIN" })
	c := nsClient(ns, false)
	for range 6 {
		if body, _, err := get(c, farmURL); err != nil || body != "front2" {
			t.Fatalf("new client while front1 drains: %q, %v", body, err)
		}
	}
	sticky := nsClient(ns, true)
	u, _ := http.NewRequest(http.MethodGet, farmURL, nil)
	sticky.Jar.SetCookies(u.URL, []*http.Cookie{{Name: "SERVERID", Value: "cookie1"}})
	if body, _, err := get(sticky, farmURL); err != nil || body != "front1" {
		t.Fatalf("client holding front1's cookie while it drains: %q, %v", body, err)
	}
	// The saved server state carries the runtime drain over a reload.
	if !apply(t, p, nodeConfig(p, 2001)) {
		t.Fatal("a changed configuration was not reloaded")
	}
	stats, err := p.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stats {
		if s.Server == "front1" && s.Backend == backend && s.Status != "DRAIN" {
			t.Errorf("front1 is %s after a reload, not DRAIN", s.Status)
		}
	}
	apply(t, p, nodeConfig(p, 2000))
	if err := p.SetDrain(context.Background(), backend, "front1", false); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, p, "front1 UP again", allUp)
	if err := p.SetDrain(context.Background(), backend, "nosuch", true); err == nil {
		t.Error("SetDrain on an unknown server succeeded")
	}
}

func testRefused(t *testing.T, ns *netnstest.NS, p *Process) {
	before, err := os.ReadFile(filepath.Join(p.Dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	bad := append(append([]byte(nil), before...), "    nosuch-keyword 1\n"...)
	reloaded, err := p.Apply(context.Background(), bad, ErrorFiles(nodeConfig(p, 2000)))
	var verr *ValidationError
	if !errors.As(err, &verr) || reloaded {
		t.Fatalf("Apply of a bad configuration: reloaded %v, err %v", reloaded, err)
	}
	t.Logf("refused: %v", err)
	if !strings.Contains(err.Error(), "nosuch-keyword") {
		t.Errorf("the error does not quote haproxy's alert: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(p.Dir, ConfigFile))
	if string(after) != string(before) {
		t.Error("the refused configuration reached haproxy.cfg")
	}
	if _, _, err := get(nsClient(ns, false), farmURL); err != nil {
		t.Fatalf("haproxy stopped serving after a refused configuration: %v", err)
	}
	if _, err := os.Stat(filepath.Join(p.Dir, errorsDir, BackendName("default/empty"), "503.http")); err != nil {
		t.Errorf("the running configuration's error file is gone: %v", err)
	}
}

// testReloadFailure loads a configuration that `haproxy -c` accepts but the
// reload cannot apply (a farm on a port a web server holds): HAProxy keeps
// serving the previous one, which Dir still holds.
func testReloadFailure(t *testing.T, ns *netnstest.NS, p *Process) {
	before, err := os.ReadFile(filepath.Join(p.Dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	c := nodeConfig(p, 2000)
	c.Farms[1].Spec.Frontend.Port = nodeWebPort
	cfg, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	reloaded, err := p.Apply(context.Background(), cfg, Files(c))
	var verr *ValidationError
	if err == nil || errors.As(err, &verr) || reloaded {
		t.Fatalf("Apply of a configuration that cannot bind: reloaded %v, err %v", reloaded, err)
	}
	t.Logf("reload refused: %v", err)
	if after, _ := os.ReadFile(filepath.Join(p.Dir, ConfigFile)); string(after) != string(before) {
		t.Error("Dir does not hold the running configuration again")
	}
	if _, _, err := get(nsClient(ns, false), farmURL); err != nil {
		t.Fatalf("haproxy stopped serving after a failed reload: %v", err)
	}
	if apply(t, p, nodeConfig(p, 2000)) {
		t.Error("the running configuration was reloaded again")
	}
}

func testAdopt(t *testing.T, adopted, original *Process) {
	if !adopted.Running(context.Background()) {
		t.Fatal("a new Process on the same Dir does not find the running haproxy")
	}
	pid, _ := original.masterPID()
	if apply(t, adopted, nodeConfig(adopted, 2000)) {
		t.Error("the adopting Process reloaded an identical configuration")
	}
	if got, _ := adopted.masterPID(); got != pid {
		t.Errorf("master pid %d became %d", pid, got)
	}
	// A session of its own: the agent's end (its process group, its
	// terminal) does not reach HAProxy.
	if sid, err := unix.Getsid(pid); err != nil || sid == mustGetsid(t) {
		t.Errorf("haproxy master %d: session %d, %v: not detached from the test", pid, sid, err)
	}
	if _, err := adopted.Stats(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func mustGetsid(t *testing.T) int {
	sid, err := unix.Getsid(0)
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

// testReloadUnderLoad reloads at least minReloads times, for at least 2s,
// while clients send requests without pause, and expects every request to
// succeed.
func testReloadUnderLoad(t *testing.T, ns *netnstest.NS, p *Process) {
	var requests, failures atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := nsClient(ns, false)
			for {
				select {
				case <-stop:
					return
				default:
				}
				requests.Add(1)
				if _, _, err := get(c, farmURL); err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	reloads := 0
	deadline := time.Now().Add(2 * time.Second)
	var slowest time.Duration
	for i := 0; reloads < minReloads || time.Now().Before(deadline); i++ {
		start := time.Now()
		if apply(t, p, nodeConfig(p, int32(2000+i%2+1))) {
			reloads++
		}
		slowest = max(slowest, time.Since(start))
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests during %d reloads (slowest Apply %v), %d failed", requests.Load(), reloads, slowest.Round(time.Millisecond), failures.Load())
	if failures.Load() > 0 {
		t.Fatalf("%d requests failed during reloads, first: %v", failures.Load(), firstErr.Load())
	}
}

// testDrainPortClosed is the DNAT trick: with nothing answering on front1's
// drain port, its main server goes DOWN, new clients go to front2, and a
// client holding front1's cookie is served by front1's backup twin.
func testDrainPortClosed(t *testing.T, ns *netnstest.NS, p *Process, front1 *webServer) {
	_ = front1.drain.Close()
	waitStatus(t, p, "front1 DOWN, its backup UP", func(s map[string]ServerStat) bool {
		return s["front1"].Status == "DOWN" && s["front1-backup"].Status == "UP"
	})
	sticky := nsClient(ns, true)
	u, _ := http.NewRequest(http.MethodGet, farmURL, nil)
	sticky.Jar.SetCookies(u.URL, []*http.Cookie{{Name: "SERVERID", Value: "cookie1"}})
	if body, _, err := get(sticky, farmURL); err != nil || body != "front1" {
		t.Fatalf("client holding front1's cookie: %q, %v", body, err)
	}
	c := nsClient(ns, false)
	for range 4 {
		if body, _, err := get(c, farmURL); err != nil || body != "front2" {
			t.Fatalf("new client while front1's drain port is closed: %q, %v", body, err)
		}
	}
}
