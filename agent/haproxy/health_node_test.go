package haproxy

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/netnstest"
)

// clientPatience is the client timeout of the trials: a request
// that picked a dead front must be served elsewhere within it.
const clientPatience = 300 * time.Millisecond

// TestNodeDeadFront runs a real HAProxy in a namespace of its own: the
// runtime API takes a front's servers down at once and the checks bring
// them back; and a front that stops answering SYNs costs no request.
func TestNodeDeadFront(t *testing.T) {
	ns := newNamespace(t)
	p := newNodeProcess(t, ns)
	for _, f := range nodeFronts {
		startWebServer(t, ns, f)
	}
	apply(t, p, checkedConfig(p, 100*time.Millisecond, 3))
	waitStatus(t, p, "every server UP", allUp)

	t.Run("health down, back through the checks", func(t *testing.T) { testHealthDown(t, ns, p) })
	t.Run("health down keeps a drain", func(t *testing.T) { testHealthDownKeepsDrain(t, p) })
	t.Run("black-holed front", func(t *testing.T) { testBlackHoled(t, ns, p) })
}

// checkedConfig is nodeConfig with the check's interval and rise.
func checkedConfig(p *Process, inter time.Duration, rise int32) Config {
	c := nodeConfig(p, 2000)
	hc := &c.Farms[0].Spec.HealthCheck
	hc.Interval, hc.Rise = metav1.Duration{Duration: inter}, rise
	return c
}

func testHealthDown(t *testing.T, ns *netnstest.NS, p *Process) {
	backend := BackendName("default/web")
	for _, s := range []string{"front2", "front2-backup"} {
		if err := p.SetHealthDown(context.Background(), backend, s); err != nil {
			t.Fatal(err)
		}
	}
	// At once: no check has failed, front2 answers them all.
	stats, err := p.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stats {
		if s.Backend == backend && strings.HasPrefix(s.Server, "front2") && !strings.HasPrefix(s.Status, "DOWN") {
			t.Fatalf("%s is %q right after health down", s.Server, s.Status)
		}
	}
	c := nsClient(ns, false)
	for range 4 {
		if body, _, err := get(c, farmURL); err != nil || body != "front1" {
			t.Fatalf("new client while front2 is down: %q, %v", body, err)
		}
	}
	// The checks see it answer and bring it back after rise good ones,
	// through the intermediate "DOWN n/rise" states.
	seen := map[string]bool{}
	waitStatus(t, p, "front2 UP again", func(s map[string]ServerStat) bool {
		seen[s["front2"].Status] = true
		return allUp(s)
	})
	if !seen["DOWN 1/3"] && !seen["DOWN 2/3"] {
		t.Logf("front2 went %v: the polling missed the rise states", seen)
	}
	if err := p.SetHealthDown(context.Background(), backend, "nosuch"); err == nil {
		t.Error("SetHealthDown on an unknown server succeeded")
	}
}

func testHealthDownKeepsDrain(t *testing.T, p *Process) {
	backend := BackendName("default/web")
	ctx := context.Background()
	if err := p.SetDrain(ctx, backend, "front1", true); err != nil {
		t.Fatal(err)
	}
	if err := p.SetHealthDown(ctx, backend, "front1"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, p, "front1 back, still draining", func(s map[string]ServerStat) bool { return s["front1"].Status == "DRAIN" })
	if err := p.SetDrain(ctx, backend, "front1", false); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, p, "every server UP", allUp)
}

// testBlackHoled drops every packet to front2's web port, as a hard loss
// of its node does, with checks too slow to notice during the test: real
// traffic marks it down (observe layer4), and each request that picked it
// is redispatched after the fronts' short connect timeout, within the
// client's patience.
func testBlackHoled(t *testing.T, ns *netnstest.NS, p *Process) {
	apply(t, p, checkedConfig(p, time.Minute, 2))
	waitStatus(t, p, "every server UP", allUp)
	rule := []string{"OUTPUT", "-d", "10.98.0.2", "-p", "tcp", "--dport", "5080", "-j", "DROP"}
	ns.MustRun(t, "iptables", append([]string{"-A"}, rule...)...)
	t.Cleanup(func() { _, _ = ns.Run("iptables", append([]string{"-D"}, rule...)...) })

	c := nsClient(ns, false)
	c.Timeout = clientPatience
	var failed int
	var slowest time.Duration
	for range 30 {
		start := time.Now()
		body, _, err := get(c, farmURL)
		slowest = max(slowest, time.Since(start))
		if err != nil || body != "front1" {
			failed++
			t.Logf("request failed: %q, %v", body, err)
		}
	}
	t.Logf("front2 black-holed: %d of 30 requests failed, the slowest took %s", failed, slowest)
	if failed != 0 {
		t.Errorf("%d requests failed: each should be redispatched within %s", failed, clientPatience)
	}
	stats, err := p.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stats {
		if s.Backend == BackendName("default/web") && s.Server == "front2" && !strings.HasPrefix(s.Status, "DOWN") {
			t.Errorf("front2 is %q after the errors of real traffic; want DOWN (observe layer4, error-limit)", s.Status)
		}
	}
}

// TestNodeHungWebServer: a web server that accepts connections and
// requests but stops answering (as a SIGSTOPped nginx, whose kernel still
// completes the handshakes) is found by the HTTP check alone. Under a
// steady stream of requests with a short client patience, it logs how long
// that took at the CRD's defaults and how many requests failed meanwhile;
// none fails once it is down.
func TestNodeHungWebServer(t *testing.T) {
	ns := newNamespace(t)
	p := newNodeProcess(t, ns)
	hung := thirdFront(t, ns, "hung")
	startWebServer(t, ns, nodeFronts[0])
	var hanging atomic.Bool
	startHangingServer(t, ns, hung, &hanging)
	c := nodeConfig(p, 2000)
	c.Farms[0].Fronts = []Front{nodeFronts[0], hung}
	c.Farms[0].Spec.HealthCheck = webfarmv1.HealthCheckSpec{} // the CRD's defaults
	apply(t, p, c)
	// Healthy for long enough that one failed check does not take it down.
	waitStatus(t, p, "every server UP", func(s map[string]ServerStat) bool { return s["hung"].Status == "UP" && s["front1"].Status == "UP" })
	client := nsClient(ns, false)
	client.Timeout = clientPatience
	for range 4 {
		if _, _, err := get(client, farmURL); err != nil {
			t.Fatal(err)
		}
	}

	hanging.Store(true)
	down, failed, sent, _ := requestsUntilDown(t, p, client, "hung")
	t.Logf("hung web server marked down by the check after %s; %d of %d sequential requests failed meanwhile (%s patience)",
		down.Round(10*time.Millisecond), failed, sent, clientPatience)
	for range 20 {
		if body, _, err := get(client, farmURL); err != nil || body != "front1" {
			t.Fatalf("a request failed once the hung server was down: %q, %v", body, err)
		}
	}
}

// requestsUntilDown sends one request after another, each of which front1
// must answer, until server is DOWN in HAProxy; it returns how long that
// took and how many of the requests failed (and the first failure).
func requestsUntilDown(t *testing.T, p *Process, client *http.Client, server string) (down time.Duration, failed, sent int, firstErr error) {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := poll(ctx, server+" DOWN", func() (bool, error) {
		sent++
		if body, _, err := get(client, farmURL); err != nil || body != "front1" {
			failed++
			if firstErr == nil {
				firstErr = fmt.Errorf("%q, %v", body, err)
			}
		}
		stats, err := p.Stats(ctx)
		for _, s := range stats {
			if s.Backend == BackendName("default/web") && s.Server == server && strings.HasPrefix(s.Status, "DOWN") {
				down = time.Since(start)
			}
		}
		return down > 0, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return down, failed, sent, firstErr
}

// startHangingServer serves f's web and drain ports; while hanging is set,
// it reads requests and never answers them. stop closes its ports.
func startHangingServer(t *testing.T, ns *netnstest.NS, f Front, hanging *atomic.Bool) (stop func()) {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if hanging.Load() {
			<-r.Context().Done()
			return
		}
		fmt.Fprint(rw, f.Name)
	})}
	for _, port := range []uint16{nodeWebPort, nodeDrainPort} {
		l := ns.MustListen(t, netip.AddrPortFrom(f.Address, port))
		go func() { _ = srv.Serve(l) }()
	}
	t.Cleanup(func() { _ = srv.Close() })
	return func() { _ = srv.Close() }
}

// TestNodeEmptyResponseRetried: a front that closes connections without an
// answer, as one dying under a request does, costs no GET (retried on
// another front) but is not given a second chance at a POST, which may
// have taken effect.
func TestNodeEmptyResponseRetried(t *testing.T) {
	ns := newNamespace(t)
	p := newNodeProcess(t, ns)
	closer := thirdFront(t, ns, "closer")
	startWebServer(t, ns, nodeFronts[0])
	l := ns.MustListen(t, netip.AddrPortFrom(closer.Address, nodeWebPort))
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = conn.Read(make([]byte, 4096))
			_ = conn.Close()
		}
	}()
	// Its check, on the drain port, answers.
	drain := ns.MustListen(t, netip.AddrPortFrom(closer.Address, nodeDrainPort))
	checks := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { fmt.Fprint(rw, "ok") })}
	go func() { _ = checks.Serve(drain) }()
	t.Cleanup(func() { _ = checks.Close() })
	c := checkedConfig(p, 100*time.Millisecond, 1)
	c.Farms[0].Fronts = []Front{nodeFronts[0], closer}
	apply(t, p, c)
	waitStatus(t, p, "the closing front's main server UP", func(s map[string]ServerStat) bool {
		return s["closer"].Status == "UP" && s["front1"].Status == "UP"
	})

	client := nsClient(ns, false)
	for i := range 6 {
		if body, _, err := get(client, farmURL); err != nil || body != "front1" {
			t.Fatalf("GET %d: %q, %v; want it retried on front1", i, body, err)
		}
	}
	var refused int
	for range 4 {
		resp, err := client.Post(farmURL, "text/plain", strings.NewReader("x"))
		if err != nil {
			refused++
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			refused++
		}
	}
	t.Logf("%d of 4 POSTs met the closing front and failed, not retried", refused)
	if refused == 0 {
		t.Error("no POST reached the closing front: round robin should have sent it some")
	}
}

// thirdFront is a front beside nodeFronts, at an address of its own in ns.
func thirdFront(t *testing.T, ns *netnstest.NS, name string) Front {
	f := Front{Name: name, Address: netip.MustParseAddr("10.98.0.3"), Cookie: "cookie3"}
	ns.MustRun(t, "ip", "addr", "add", f.Address.String()+"/32", "dev", "lo")
	return f
}

// TestNodeStoppedWebServer: a web server that stops (its port now refuses
// connections, as when nginx exits) costs no request at the CRD's
// defaults: each request HAProxy sends it is retried on another front
// (retry-on conn-failure, redispatch), and real traffic marks it down
// (observe layer4) before the checks would.
func TestNodeStoppedWebServer(t *testing.T) {
	ns := newNamespace(t)
	p := newNodeProcess(t, ns)
	stopping := thirdFront(t, ns, "stopping")
	startWebServer(t, ns, nodeFronts[0])
	var hanging atomic.Bool
	stop := startHangingServer(t, ns, stopping, &hanging)
	c := nodeConfig(p, 2000)
	c.Farms[0].Fronts = []Front{nodeFronts[0], stopping}
	c.Farms[0].Spec.HealthCheck = webfarmv1.HealthCheckSpec{} // the CRD's defaults
	apply(t, p, c)
	waitStatus(t, p, "every server UP", func(s map[string]ServerStat) bool { return s["stopping"].Status == "UP" && s["front1"].Status == "UP" })
	client := nsClient(ns, false)
	client.Timeout = clientPatience
	served := map[string]int{}
	for range 6 {
		body, _, err := get(client, farmURL)
		if err != nil {
			t.Fatal(err)
		}
		served[body]++
	}
	if served["stopping"] == 0 {
		t.Fatalf("the server to stop served none of 6 requests (%v): the test would show nothing", served)
	}

	stop()
	down, failed, sent, firstErr := requestsUntilDown(t, p, client, "stopping")
	t.Logf("stopped web server marked down after %s; %d of %d sequential requests failed meanwhile (%s patience)",
		down.Round(10*time.Millisecond), failed, sent, clientPatience)
	if failed > 0 {
		t.Errorf("%d of %d requests failed while the stopped server was up; first: %v", failed, sent, firstErr)
	}
}
