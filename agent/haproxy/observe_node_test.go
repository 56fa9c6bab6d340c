package haproxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/webfarm/webfarm/agent/accesslog"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/netnstest"
	"github.com/webfarm/webfarm/internal/testenv"
)

const (
	metricsURL = "http://10.98.0.1:8404" + MetricsPath
	// farmBase is farmURL without its trailing slash.
	farmBase = "http://10.98.0.1:8080"
)

// httplogLine is the httplog format of one request to the test farm: client,
// accept date, frontend, backend/server, timers, status, bytes, cookies,
// termination state, connection counts, queues, request line.
var httplogLine = regexp.MustCompile(`^[0-9.]+:\d+ \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] http_any_8080 farm_default_web/front[12](-backup)? ` +
	`\d+/\d+/\d+/\d+/\d+ 200 \d+ - - [-A-Za-z]{4} \d+/\d+/\d+/\d+/\d+ \d+/\d+ "GET (/\S*) HTTP/1\.1"$`)

// syncBuffer is the agent's stdout as the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSuffix(b.buf.String(), "\n"), "\n")
}

// TestNodeExporterAndAccessLog runs HAProxy with its exporter and its access
// log relayed by agent/accesslog: every request is one httplog line, the
// health checks and the exporter none, the exporter counts the requests, and
// an access log that nobody reads drops lines without failing a request.
func TestNodeExporterAndAccessLog(t *testing.T) {
	ns := newNamespace(t)
	p := newNodeProcess(t, ns)
	for _, f := range nodeFronts {
		startWebServer(t, ns, f)
	}
	out := &syncBuffer{}
	stopRelay := runRelay(t, p.LogSocket(), out)
	cfg := nodeConfig(p, 2000)
	cfg.Farms[0].Spec.HealthCheck.Path = "/check.txt"
	cfg.Metrics = netip.MustParseAddrPort("10.98.0.1:8404")
	cfg.LogSocket = p.LogSocket()
	apply(t, p, cfg)
	waitStatus(t, p, "every server UP", allUp)

	const pages = 20
	t.Run("one line per request, none for checks", func(t *testing.T) { testAccessLog(t, ns, out, pages) })
	t.Run("exporter", func(t *testing.T) { testExporter(t, ns, out, pages) })
	t.Run("load with the relay reading", func(t *testing.T) { load(t, ns, p, "relay reading") })
	stopRelay()
	// A unix datagram socket queues net.unix.max_dgram_qlen datagrams (10
	// by default), whatever its buffer: the queue of the namespace that
	// created it. The relay here is created in the test's namespace.
	t.Run("load with the relay reading, queue 512", func(t *testing.T) {
		ns.MustRun(t, "sysctl", "-q", "-w", "net.unix.max_dgram_qlen=512")
		var stop func()
		if err := ns.Do(func() error { stop = runRelay(t, p.LogSocket(), io.Discard); return nil }); err != nil {
			t.Fatal(err)
		}
		defer stop()
		load(t, ns, p, "relay reading, net.unix.max_dgram_qlen 512")
	})
	t.Run("nobody reads the log", func(t *testing.T) { testUnreadLog(t, ns, p) })
	t.Run("a new relay gets the lines again", func(t *testing.T) {
		again := &syncBuffer{}
		runRelay(t, p.LogSocket(), again)
		mustGet(t, nsClient(ns, false), farmBase+"/after-restart")
		waitLines(t, again, "the line of /after-restart", func(paths map[string]int) bool { return paths["/after-restart"] == 1 })
	})
}

// runRelay relays the access log at path to out until the returned stop is
// called or t ends.
func runRelay(t *testing.T, path string, out io.Writer) (stop func()) {
	t.Helper()
	r, err := accesslog.Listen(path, out, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			t.Errorf("relay: %v", err)
		}
	}()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return stop
}

func mustGet(t *testing.T, c interface {
	Get(string) (*http.Response, error)
}, url string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
}

// waitLines polls the relayed lines until want holds for the number of lines
// per request path; a line that is not a request to the farm in the
// httplog format fails t.
func waitLines(t *testing.T, out *syncBuffer, what string, want func(map[string]int) bool) map[string]int {
	t.Helper()
	var paths map[string]int
	var bad string
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		paths = map[string]int{}
		for _, l := range out.lines() {
			if l == "" {
				continue
			}
			m := httplogLine.FindStringSubmatch(l)
			if m == nil {
				bad = l
				return true, nil
			}
			paths[m[2]]++
		}
		return want(paths), nil
	})
	if bad != "" {
		t.Fatalf("relayed a line that is no httplog line of the farm: %q", bad)
	}
	if err != nil {
		t.Fatalf("waiting for %s: %v; lines per path: %v", what, err, paths)
	}
	return paths
}

func testAccessLog(t *testing.T, ns *netnstest.NS, out *syncBuffer, pages int) {
	c := nsClient(ns, false)
	// Checks between the pages: a check logged after the last page would
	// be missed, one logged before it is seen.
	for i := range pages {
		mustGet(t, c, farmBase+"/check.txt")
		mustGet(t, c, farmBase+webfarmv1.ServingCheckPath)
		mustGet(t, c, fmt.Sprintf("%s/page-%d", farmBase, i))
	}
	paths := waitLines(t, out, "a line per page", func(paths map[string]int) bool { return len(paths) >= pages })
	for i := range pages {
		if n := paths[fmt.Sprintf("/page-%d", i)]; n != 1 {
			t.Errorf("/page-%d logged %d times, want once", i, n)
		}
	}
	if len(paths) != pages {
		t.Errorf("logged paths %v, want the %d pages only", paths, pages)
	}
	t.Logf("%d requests, %d access-log lines", 3*pages, len(out.lines()))
}

func testExporter(t *testing.T, ns *netnstest.NS, out *syncBuffer, pages int) {
	c := nsClient(ns, false)
	resp, err := c.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %v %v", metricsURL, resp.Status, err)
	}
	requests := sample(t, body, `haproxy_frontend_http_requests_total{proxy="http_any_8080"}`)
	if requests < float64(3*pages) {
		t.Errorf("the exporter counts %v requests to the farm, want at least %d", requests, 3*pages)
	}
	if up := sample(t, body, `haproxy_backend_active_servers{proxy="farm_default_web"}`); up != 2 {
		t.Errorf("the exporter counts %v active servers, want 2", up)
	}
	if resp, err := c.Get("http://10.98.0.1:8404/"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET / on the exporter: %v %v, want 404", resp, err)
	}
	checkDashboardMetrics(t, body)
	mustGet(t, c, farmBase+"/after-scrape")
	waitLines(t, out, "the line of /after-scrape", func(paths map[string]int) bool { return paths["/after-scrape"] == 1 })
	t.Logf("exporter: %d bytes, %v requests to the farm", len(body), requests)
}

// checkDashboardMetrics: this HAProxy exports every metric of its exporter
// that the chart's dashboard and alerts read, as test/chart lists them.
func checkDashboardMetrics(t *testing.T, exposition []byte) {
	t.Helper()
	list, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "test", "chart", "testdata", "haproxy-exporter-metrics.txt"))
	if err != nil {
		t.Fatal(err)
	}
	names := 0
	for _, name := range strings.Split(string(list), "\n") {
		if name = strings.TrimSpace(name); name == "" || strings.HasPrefix(name, "#") {
			continue
		}
		names++
		if !bytes.Contains(exposition, []byte("\n"+name+"{")) && !bytes.Contains(exposition, []byte("\n"+name+" ")) {
			t.Errorf("HAProxy's exporter has no series %s, which the chart's dashboard or alerts read", name)
		}
	}
	t.Logf("the exporter has the %d metrics the dashboard reads", names)
}

// sample is the value of the series named exactly by series in a Prometheus
// text exposition.
func sample(t *testing.T, exposition []byte, series string) float64 {
	t.Helper()
	for _, l := range strings.Split(string(exposition), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in the exposition", series)
	return 0
}

// testUnreadLog binds the log socket and never reads it, as a stalled
// agent would: requests go on being served, and HAProxy drops lines. The
// same load with the socket gone (the agent restarting) is printed beside
// it, and the one with the relay reading before it (see TestNodeExporterAndAccessLog).
func testUnreadLog(t *testing.T, ns *netnstest.NS, p *Process) {
	load(t, ns, p, "no socket (agent restarting)")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p.LogSocket(), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if dropped := load(t, ns, p, "socket never read (agent stalled)"); dropped == 0 {
		t.Fatal("haproxy dropped no line although nobody read the socket: did it queue them somewhere?")
	}
}

// load sends 2000 requests from 8 clients, fails t if one fails, prints
// the time they took, and returns how many log lines HAProxy dropped.
func load(t *testing.T, ns *netnstest.NS, p *Process, logPath string) int64 {
	t.Helper()
	before := droppedLogs(t, p)
	const workers, each = 8, 250
	var failures atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := nsClient(ns, false)
			for i := range each {
				if _, _, err := get(c, fmt.Sprintf("%s/load-%d-%d", farmBase, w, i)); err != nil {
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	dropped := droppedLogs(t, p) - before
	t.Logf("log path %s: %d requests from %d clients in %v (%v a request per client); haproxy dropped %d lines",
		logPath, workers*each, workers, elapsed.Round(time.Millisecond), (elapsed / each).Round(time.Microsecond), dropped)
	if failures.Load() > 0 {
		t.Fatalf("log path %s: %d requests failed", logPath, failures.Load())
	}
	return dropped
}

// droppedLogs is HAProxy's count of log lines it could not send.
func droppedLogs(t *testing.T, p *Process) int64 {
	t.Helper()
	info, err := command(context.Background(), p.RuntimeSocket(), "show info")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(l, "DroppedLogs: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no DroppedLogs in show info:\n%s", info)
	return 0
}
