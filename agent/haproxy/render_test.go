package haproxy

import (
	"bytes"
	"context"
	"flag"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/testcerts"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const (
	testSocket    = "/run/webfarm/haproxy/runtime.sock"
	testLogSocket = "/run/webfarm/haproxy/log.sock"
)

// sampleFarm is config/samples' WebFarm with its Secret and ConfigMap, on
// two fronts.
func sampleFarm(t testing.TB) Farm {
	t.Helper()
	var wf webfarmv1.WebFarm
	readYAML(t, "webfarm_v1alpha1_webfarm.yaml", &wf)
	var secret corev1.Secret
	readYAML(t, "stats_secret.yaml", &secret)
	var pages corev1.ConfigMap
	readYAML(t, "error_pages_configmap.yaml", &pages)
	f := Farm{
		Key:  "default/" + wf.Name,
		Spec: wf.Spec,
		Fronts: []Front{
			{Name: "front1", Address: netip.MustParseAddr("192.0.2.11"), Cookie: "k3x9q2m1"},
			{Name: "front2", Address: netip.MustParseAddr("192.0.2.12"), Cookie: "p7w4z8n5"},
		},
		Stats:      &Credentials{User: secret.StringData["username"], Password: secret.StringData["password"]},
		ErrorPages: map[int][]byte{},
	}
	for key, page := range pages.Data {
		code, err := strconv.Atoi(key)
		if err != nil {
			t.Fatalf("error pages sample: key %q: %v", key, err)
		}
		f.ErrorPages[code] = []byte(page)
	}
	return f
}

func readYAML(t testing.TB, name string, into any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// goldenConfigs are the configurations whose rendering is kept under
// testdata/<name>/ (haproxy.cfg and errors/), a layout `haproxy -c` reads.
func goldenConfigs(t testing.TB) map[string]Config {
	sample := sampleFarm(t)

	// Every optional field left out: the CRD defaults apply. One front is
	// draining, one is IPv6, none has stats or error pages.
	defaults := Farm{
		Key: "shop/store.example",
		Fronts: []Front{
			{Name: "node-b", Address: netip.MustParseAddr("2001:db8::b"), Cookie: "bbbb2222"},
			{Name: "node-a", Address: netip.MustParseAddr("198.51.100.7"), Cookie: "aaaa1111"},
		},
	}

	off := false
	zero := int32(0)
	variant := Farm{
		Key: "blog/www",
		Spec: webfarmv1.WebFarmSpec{
			Frontend: webfarmv1.FrontendSpec{Port: 8080, MaxConn: 100},
			Backend: webfarmv1.BackendSpec{
				WebPort: 8000, DrainPort: 8001, Balance: webfarmv1.BalanceLeastConn,
				Cookie: webfarmv1.CookieSpec{Name: "BLOG_ID"}, ForwardFor: &off, Retries: &zero, Redispatch: &off,
			},
			HealthCheck: webfarmv1.HealthCheckSpec{Method: "GET", Path: "/healthz?full=1", Interval: metav1.Duration{Duration: 500 * time.Millisecond}, Rise: 1, Fall: 1,
				Observe: webfarmv1.ObserveLayer7, ErrorLimit: 10},
			Timeouts: webfarmv1.TimeoutsSpec{
				Connect: metav1.Duration{Duration: 1500 * time.Microsecond},
				Client:  metav1.Duration{Duration: time.Minute}, Server: metav1.Duration{Duration: 2 * time.Hour},
			},
			Stats: &webfarmv1.StatsSpec{Enabled: true, URI: "/_stats"},
		},
		Fronts: []Front{{Name: "web1.dc1", Address: netip.MustParseAddr("203.0.113.5"), Cookie: "w1"}},
		// Quotes, '#', '$', '\' and spaces stay inside one quoted word.
		Stats: &Credentials{User: `o'neil`, Password: `p#ss w$rd\'x`},
		ErrorPages: map[int][]byte{
			503: []byte("HTTP/1.0 503 Busy\r\nContent-Type: text/plain\r\nRetry-After: 30\r\nContent-Length: 5\r\n\r\nbusy\n"),
		},
	}
	// A farm that binds the front's own address (bindNodeAddress) beside
	// its failover address: one more frontend per port, the same sites.
	nodeAddress := sitesConfig(t)
	nodeAddress.Farms[1].Addresses = append(nodeAddress.Farms[1].Addresses, nodeAddress.Farms[1].Fronts[0].Address)
	// A farm that keeps uploads in step: a GET answered 404 is retried.
	uploads := sampleFarm(t)
	uploads.Spec.Uploads = media()
	return map[string]Config{
		"uploads":      {Farms: []Farm{uploads}, RuntimeSocket: testSocket},
		"sites":        sitesConfig(t),
		"node-address": nodeAddress,
		"sample": {Farms: []Farm{sample}, RuntimeSocket: testSocket,
			Metrics: netip.MustParseAddrPort("192.0.2.11:8404"), LogSocket: testLogSocket},
		"defaults": {Farms: []Farm{defaults}, RuntimeSocket: testSocket},
		"variants": {Farms: []Farm{variant, sample}, RuntimeSocket: testSocket, IPv4Only: true,
			Metrics: netip.MustParseAddrPort("[2001:db8::b]:9101"), LogSocket: testLogSocket},
	}
}

func TestRenderGolden(t *testing.T) {
	for name, c := range goldenConfigs(t) {
		t.Run(name, func(t *testing.T) {
			cfg, err := Render(c)
			if err != nil {
				t.Fatal(err)
			}
			files := Files(c)
			// Keys are made at test time and never committed: the golden
			// files hold everything but them, haproxy -c checks it all.
			golden := maps.Clone(files)
			maps.DeleteFunc(golden, func(path string, _ []byte) bool { return strings.HasSuffix(path, ".pem") })
			dir := filepath.Join("testdata", name)
			if *update {
				writeGolden(t, dir, cfg, golden)
			}
			compareGolden(t, dir, cfg, golden)
			full := t.TempDir()
			if err := writeTree(full, cfg, files); err != nil {
				t.Fatal(err)
			}
			checkWithHAProxy(t, full)
		})
	}
}

func writeGolden(t *testing.T, dir string, cfg []byte, files map[string][]byte) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := writeTree(dir, cfg, files); err != nil {
		t.Fatal(err)
	}
}

func compareGolden(t *testing.T, dir string, cfg []byte, files map[string][]byte) {
	t.Helper()
	want := map[string][]byte{ConfigFile: cfg}
	for path, content := range files {
		want[path] = content
	}
	got := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		got[rel], err = os.ReadFile(path)
		return err
	})
	if err != nil {
		t.Fatalf("reading golden files (run with -update to write them): %v", err)
	}
	for path, content := range want {
		if !bytes.Equal(got[path], content) {
			t.Errorf("%s differs from the rendering (run go test -update and review the diff):\n%s", filepath.Join(dir, path), content)
		}
	}
	for path := range got {
		if _, ok := want[path]; !ok {
			t.Errorf("%s: golden file no longer rendered", filepath.Join(dir, path))
		}
	}
}

// checkWithHAProxy runs `haproxy -c` on a directory laid out like Process.Dir,
// when haproxy is installed.
func checkWithHAProxy(t testing.TB, dir string) {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Log("haproxy not installed: configuration not checked by haproxy -c")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := validate(ctx, bin, filepath.Join(dir, ConfigFile)); err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	c := goldenConfigs(t)["variants"]
	first, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(c.Farms)
	for i := range c.Farms {
		slices.Reverse(c.Farms[i].Fronts)
	}
	again, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Fatalf("the order of farms and fronts changed the output:\n%s\n---\n%s", first, again)
	}
}

func TestNames(t *testing.T) {
	if got := BackendName("default/web.example"); got != "farm_default_web.example" {
		t.Errorf("BackendName = %q", got)
	}
	main, backup := ServerNames("front1")
	if main != "front1" || backup != "front1-backup" {
		t.Errorf("ServerNames = %q, %q", main, backup)
	}
}

// sitesConfig is the sample farm on two failover addresses with two HTTPS
// sites (one with a redirect and HSTS, one by wildcard), and a second farm
// sharing its port 80 with a plain site: Host routing on a shared
// frontend, SNI with several certificates, a default certificate.
func sitesConfig(t testing.TB) Config {
	t.Helper()
	cert := func(names ...string) []byte {
		p, err := testcerts.Valid(names...)
		if err != nil {
			t.Fatal(err)
		}
		return append(p.Cert, p.Key...)
	}
	sample := sampleFarm(t)
	sample.Addresses = []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")}
	shop := Farm{
		Key:       "shop/store",
		Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		Fronts:    []Front{{Name: "front1", Address: netip.MustParseAddr("192.0.2.11"), Cookie: "s1"}},
	}
	return Config{
		Farms: []Farm{sample, shop},
		Sites: []Site{
			{Key: "default/www", Farm: sample.Key, Hostnames: []string{"www.example.com", "example.com"},
				TLSPort: 443, Certificate: cert("www.example.com", "example.com"), RedirectToHTTPS: true,
				HSTS: &HSTS{MaxAgeSeconds: 31536000, IncludeSubDomains: true}},
			{Key: "default/blogs", Farm: sample.Key, Hostnames: []string{"*.blogs.example.com"},
				TLSPort: 443, Certificate: cert("*.blogs.example.com")},
			{Key: "shop/store", Farm: shop.Key, Hostnames: []string{"shop.example.com", "*.shop.example.com"}},
		},
		DefaultCertificate: cert("webfarm.invalid"),
		RuntimeSocket:      testSocket,
		LogSocket:          testLogSocket,
	}
}
