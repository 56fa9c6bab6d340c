package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/webfarm/webfarm/internal/netnstest"
)

const nodeWebPort = 5080

// TestNodeNginx runs the real nginx in a namespace of its own on the vhosts
// Render makes: a document root and an application on a unix socket, each
// reached by its Host; HAProxy's check answered without a Host and not
// logged; reloads under load fail no request; a refused configuration
// leaves the previous one serving.
func TestNodeNginx(t *testing.T) {
	ns := netnstest.New(t)
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("nginx is not installed")
	}
	base := t.TempDir()
	root := filepath.Join(base, "www")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"index.html":                      "static site\n",
		"uploads/a.txt":                   "an upload\n",
		".webfarm/deleted/gone.txt":       "a tombstone\n",
		"uploads/.webfarm/replaced/b.txt": "a replaced upload\n",
	}
	for name, content := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	socket := filepath.Join(base, "app.sock")
	startApp(t, socket)
	p := startNginx(t, ns, filepath.Join(base, "vhosts"))
	accessLog := filepath.Join(p.Prefix, "logs", "access.log")
	c := Config{
		Vhosts: []Vhost{
			{Key: "web/static", Port: nodeWebPort, Hostnames: []string{"static.example.com"}, Root: root, Index: []string{"index.html"}},
			{Key: "web/app", Port: nodeWebPort, Hostnames: []string{"*.app.example.com"}, ProxySocket: socket},
		},
		CheckPaths: map[int32]string{nodeWebPort: "/check.txt"},
		AccessLog:  accessLog,
		Hidden:     []string{".webfarm"},
	}
	apply(t, p, c)
	client := nsHTTPClient(ns)
	for _, tc := range []struct{ host, path, want string }{
		{"static.example.com", "/", "static site\n"},
		{"shop.app.example.com", "/cart", "app host=shop.app.example.com proto=https path=/cart"},
		{"", "/check.txt", "ok\n"},
	} {
		if got := waitBody(t, client, tc.host, tc.path); got != tc.want {
			t.Errorf("Host %q %s: %q, want %q", tc.host, tc.path, got, tc.want)
		}
	}
	t.Run("the uploads' state is not served", func(t *testing.T) {
		for path, want := range map[string]int{
			"/uploads/a.txt":                   http.StatusOK,
			"/.webfarm/deleted/gone.txt":       http.StatusForbidden,
			"/.webfarm/":                       http.StatusForbidden,
			"/uploads/.webfarm/replaced/b.txt": http.StatusForbidden,
		} {
			if got := status(t, client, "static.example.com", path); got != want {
				t.Errorf("%s: %d, want %d", path, got, want)
			}
		}
	})
	t.Run("log: the client from X-Forwarded-For first, no checks", func(t *testing.T) {
		testAccessLog(t, accessLog)
	})
	t.Run("reload under load", func(t *testing.T) { testReloadUnderLoad(t, p, c, client) })
	t.Run("refused keeps the previous", func(t *testing.T) { testRefused(t, p, client) })
	t.Run("a refused vhost keeps its previous version, the others apply", func(t *testing.T) { testRefusedVhost(t, p, c, client) })
}

// testRefusedVhost gives one site a name too long for nginx's default
// server_names_hash (a valid hostname of 203 characters), and changes
// another: nginx refuses the first, which keeps serving its previous
// vhost, and applies the second.
func testRefusedVhost(t *testing.T, p *Process, c Config, client *http.Client) {
	label := strings.Repeat("a", 63)
	long := strings.Join([]string{label, label, label, "example.com"}, ".")
	c.Vhosts = slices.Clone(c.Vhosts)
	c.Vhosts[0].ClientMaxBodySize = "7m"
	c.Vhosts[1].Hostnames = []string{"*.app.example.com", long}
	files, errs := Render(c)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	out, err := p.ApplyEach(context.Background(), files)
	if err != nil {
		t.Fatalf("ApplyEach: %v", err)
	}
	t.Logf("refused: %v", out.Refused)
	app, static := VhostFile("web/app"), VhostFile("web/static")
	if len(out.Refused) != 1 || out.Refused[app] == nil {
		t.Fatalf("refused %v, want %s alone", out.Refused, app)
	}
	if !strings.Contains(out.Refused[app].Error(), "server_names_hash") {
		t.Errorf("the refusal does not carry nginx's message: %v", out.Refused[app])
	}
	now, err := readDir(p.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(now[static], files[static]) || !out.Reloaded {
		t.Errorf("the changed vhost %s was not applied (reloaded %v):\n%s", static, out.Reloaded, now[static])
	}
	if bytes.Contains(now[app], []byte(long)) {
		t.Errorf("the refused vhost is in place:\n%s", now[app])
	}
	if got, err := body(client, "shop.app.example.com", "/x"); err != nil || !strings.HasPrefix(got, "app ") {
		t.Errorf("the refused site's previous vhost does not serve: %q, %v", got, err)
	}
}

func testAccessLog(t *testing.T, path string) {
	var log string
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		data, _ := os.ReadFile(path)
		log = string(data)
		return strings.Contains(log, "GET /cart"), nil
	})
	if err != nil {
		t.Fatalf("no line for /cart in the access log:\n%s", log)
	}
	if strings.Contains(log, "/check.txt") {
		t.Errorf("the check is logged:\n%s", log)
	}
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if !strings.HasPrefix(line, "203.0.113.9 - ") {
			t.Errorf("line does not start with the client from X-Forwarded-For: %q", line)
		}
	}
}

// testReloadUnderLoad changes the vhosts, reloading nginx, while clients
// keep asking it; every request must be answered.
func testReloadUnderLoad(t *testing.T, p *Process, c Config, client *http.Client) {
	var sent, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				if _, err := body(client, "static.example.com", "/"); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	start := time.Now()
	const reloads = 10
	for i := range reloads {
		c.Vhosts[0].ClientMaxBodySize = fmt.Sprintf("%dk", i+1)
		apply(t, p, c)
	}
	took := time.Since(start)
	close(stop)
	wg.Wait()
	t.Logf("%d reloads in %v under load: %d requests, %d failed", reloads, took.Round(time.Millisecond), sent.Load(), failed.Load())
	if failed.Load() > 0 {
		t.Errorf("%d of %d requests failed across reloads; first: %v", failed.Load(), sent.Load(), firstErr.Load())
	}
}

func testRefused(t *testing.T, p *Process, client *http.Client) {
	before, err := readDir(p.Dir)
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string][]byte{}
	for k, v := range before {
		bad[k] = v
	}
	// A second default server on the port: nginx refuses the whole set.
	bad["site_web_bad.conf"] = []byte(fmt.Sprintf("server {\n    listen %d default_server;\n}\n", nodeWebPort))
	_, err = p.Apply(context.Background(), bad)
	var refused *ValidationError
	if !errors.As(err, &refused) {
		t.Fatalf("Apply of a refused configuration: %v, want a ValidationError", err)
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "duplicate default server") {
		t.Errorf("the error does not carry nginx's message: %v", err)
	}
	after, err := readDir(p.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if !same(after, before) {
		t.Error("a refused configuration changed the directory")
	}
	if got, err := body(client, "static.example.com", "/"); err != nil || got != "static site\n" {
		t.Errorf("after a refusal the site answers %q, %v", got, err)
	}
}

func apply(t *testing.T, p *Process, c Config) {
	t.Helper()
	files, errs := Render(c)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, err := p.Apply(context.Background(), files); err != nil {
		t.Fatal(err)
	}
}

// startNginx runs nginx in ns on a main configuration of its own that
// includes dir, until t ends.
func startNginx(t *testing.T, ns *netnstest.NS, dir string) *Process {
	t.Helper()
	prefix := t.TempDir()
	p := &Process{Dir: dir, Prefix: prefix}
	p.MainConfig = writeMainConfig(t, prefix, dir, false)
	// Something to include before the first Apply.
	if err := writeDir(dir, map[string][]byte{"empty.conf": nil}); err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command("nginx", p.args()...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.run(context.Background(), "-s", "stop")
		_ = cmd.Wait()
	})
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		_, err := os.Stat(filepath.Join(prefix, "nginx.pid"))
		return err == nil, nil
	})
	if err != nil {
		t.Fatal("nginx wrote no pid file")
	}
	return p
}

// startApp is the application behind a vhost: it answers on a unix socket
// with what nginx passed on.
func startApp(t *testing.T, socket string) {
	t.Helper()
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "app host=%s proto=%s path=%s", r.Host, r.Header.Get("X-Forwarded-Proto"), r.URL.Path)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// nsHTTPClient sends every request to nginx on loopback inside ns, as
// HAProxy does: with X-Forwarded-For and X-Forwarded-Proto set.
func nsHTTPClient(ns *netnstest.NS) *http.Client {
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var conn net.Conn
		err := ns.Do(func() error {
			var err error
			conn, err = (&net.Dialer{}).DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", nodeWebPort))
			return err
		})
		return conn, err
	}
	return &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}, Timeout: 5 * time.Second}
}

func body(c *http.Client, host, path string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://front"+path, nil)
	if err != nil {
		return "", err
	}
	req.Host = host
	if host == "" {
		req.Host = "127.0.0.1"
	}
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s", resp.Status)
	}
	return string(b), err
}

func status(t *testing.T, c *http.Client, host, path string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://front"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", host, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitBody(t *testing.T, c *http.Client, host, path string) string {
	t.Helper()
	var got string
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		got, last = body(c, host, path)
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("Host %q %s: %v", host, path, last)
	}
	return got
}
