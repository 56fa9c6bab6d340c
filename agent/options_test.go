package agent

import (
	"io"
	"net/netip"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/webfarm/webfarm/agent/accesslog"
	"github.com/webfarm/webfarm/agent/haproxy"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

func TestHAProxyMetricsAddress(t *testing.T) {
	node := netip.MustParseAddr("10.0.0.7")
	cases := []struct {
		value, want string // want "" for off, "error" for refused
	}{
		{"", "10.0.0.7:8404"},
		{"node:9101", "10.0.0.7:9101"},
		{"127.0.0.1:8404", "127.0.0.1:8404"},
		{"[::1]:8404", "[::1]:8404"},
		{"off", ""},
		{":8404", "error"},
		{"0.0.0.0:8404", "error"},
		{"[::]:8404", "error"},
		{"node:0", "error"},
		{"node:http", "error"},
		{"node", "error"},
	}
	for _, tc := range cases {
		t.Run(tc.value, func(t *testing.T) {
			o, ok := withDefaultsOrRefused(t, Options{NodeName: "front1", HAProxyMetrics: tc.value}, tc.want == "error")
			if !ok {
				return
			}
			got, err := o.haproxyMetrics(node)
			if err != nil {
				t.Fatal(err)
			}
			if (tc.want == "" && got.IsValid()) || (tc.want != "" && got.String() != tc.want) {
				t.Fatalf("haproxyMetrics(%q) = %v, want %q", tc.value, got, tc.want)
			}
		})
	}
}

// withDefaultsOrRefused returns o with its defaults, and whether it was
// accepted; it fails t when o is refused and should not be, or the reverse.
func withDefaultsOrRefused(t *testing.T, o Options, refused bool) (Options, bool) {
	t.Helper()
	o, err := o.withDefaults()
	switch {
	case refused && err == nil:
		t.Fatalf("accepted %+v", o)
	case !refused && err != nil:
		t.Fatal(err)
	}
	return o, err == nil
}

func TestPeerListenAddress(t *testing.T) {
	cases := []struct {
		value, want string // want "error" for refused
	}{
		{"", "[::]:7694"},
		{"10.0.0.7", "10.0.0.7:7694"},
		{"2001:db8::7", "[2001:db8::7]:7694"},
		{"::ffff:10.0.0.7", "10.0.0.7:7694"},
		{"0.0.0.0", "error"},
		{"::", "error"},
		{"fe80::1%eth0", "error"},
		{"[2001:db8::7]", "error"},
		{"$(HOST_IP)", "error"},
		{"10.0.0.7:7694", "error"},
	}
	for _, tc := range cases {
		t.Run(tc.value, func(t *testing.T) {
			o, ok := withDefaultsOrRefused(t, Options{NodeName: "front1", PeerAddress: tc.value}, tc.want == "error")
			if !ok {
				return
			}
			if got, _ := o.peerListen(); got.String() != tc.want {
				t.Fatalf("peerListen() with %q = %v, want %s", tc.value, got, tc.want)
			}
		})
	}
}

func TestProxyConfigObservability(t *testing.T) {
	dir := t.TempDir()
	relay, err := accesslog.Listen(filepath.Join(dir, "log.sock"), io.Discard, 0)
	if err != nil {
		t.Fatal(err)
	}
	self := &webfarmv1.FrontNode{ObjectMeta: metav1.ObjectMeta{Name: "front1"}, Spec: webfarmv1.FrontNodeSpec{Address: "10.0.0.7"}}
	cases := []struct {
		name          string
		metrics       string
		relay         *accesslog.Relay
		self          *webfarmv1.FrontNode
		wantMetrics   string // "" when off
		wantLogSocket bool
	}{
		{"defaults", "", relay, self, "10.0.0.7:8404", true},
		{"loopback, no access log", "127.0.0.1:9101", nil, self, "127.0.0.1:9101", false},
		{"off", "off", relay, self, "", true},
		{"node address not known yet", "", relay, nil, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := Options{NodeName: "front1", StateDir: dir, HAProxyMetrics: tc.metrics}.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			a := &Agent{opts: opts, proxy: &haproxy.Process{Dir: dir}, accessLog: tc.relay}
			cfg := a.proxyConfig(&snapshot{node: "front1", self: tc.self}, nil)
			if got := cfg.Metrics; (tc.wantMetrics == "" && got.IsValid()) || (tc.wantMetrics != "" && got.String() != tc.wantMetrics) {
				t.Errorf("metrics %v, want %q", got, tc.wantMetrics)
			}
			if got := cfg.LogSocket; (got != "") != tc.wantLogSocket || (got != "" && got != a.proxy.LogSocket()) {
				t.Errorf("log socket %q, want one: %v", got, tc.wantLogSocket)
			}
		})
	}
}
