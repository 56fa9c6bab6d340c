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
			o, err := Options{NodeName: "front1", HAProxyMetrics: tc.value}.withDefaults()
			if tc.want == "error" {
				if err == nil {
					t.Fatalf("accepted %q", tc.value)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
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
