package haproxy

import (
	"net/netip"
	"strings"
	"testing"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// TestRenderObservability checks the exporter and access-log lines that
// Config.Metrics and Config.LogSocket add, and the configurations refused.
func TestRenderObservability(t *testing.T) {
	farm := sampleFarm(t)
	withCheck := func(path string) Farm {
		f := farm
		f.Spec.HealthCheck = webfarmv1.HealthCheckSpec{Path: path}
		return f
	}
	nodeMetrics := netip.MustParseAddrPort("192.0.2.11:8404")
	cases := []struct {
		name      string
		config    Config
		want, not []string
		err       string
	}{{
		name:   "both off",
		config: Config{Farms: []Farm{farm}},
		not:    []string{"prometheus-exporter", "log ", "option httplog", "set-log-level"},
	}, {
		name:   "exporter on the node address, never logged",
		config: Config{Farms: []Farm{farm}, Metrics: nodeMetrics},
		want: []string{"frontend webfarm-metrics\n    bind 192.0.2.11:8404\n", "    no log\n",
			"    http-request use-service prometheus-exporter if { path /metrics }\n"},
		not: []string{"option httplog"},
	}, {
		name:   "exporter on IPv6 loopback",
		config: Config{Farms: []Farm{farm}, Metrics: netip.MustParseAddrPort("[::1]:8404")},
		want:   []string{"    bind [::1]:8404\n"},
	}, {
		name:   "access log to the agent's socket, check path silent",
		config: Config{Farms: []Farm{farm}, LogSocket: testLogSocket},
		want: []string{"    log /run/webfarm/haproxy/log.sock len 8192 format raw local0 info\n",
			"    log global\n    option httplog\n    http-request set-log-level silent if { path /check.txt }\n"},
		not: []string{"prometheus-exporter"},
	}, {
		name:   "a check path with a query is matched by its path",
		config: Config{Farms: []Farm{withCheck("/health/ready?full=1")}, LogSocket: testLogSocket},
		want:   []string{"http-request set-log-level silent if { path /health/ready }\n"},
	}, {
		name:   "exporter on every address",
		config: Config{Farms: []Farm{farm}, Metrics: netip.MustParseAddrPort("0.0.0.0:8404")},
		err:    "must be a unicast node address",
	}, {
		name:   "exporter without port",
		config: Config{Farms: []Farm{farm}, Metrics: netip.MustParseAddrPort("192.0.2.11:0")},
		err:    "with a port",
	}, {
		name:   "exporter on a farm's port",
		config: Config{Farms: []Farm{farm}, Metrics: netip.MustParseAddrPort("192.0.2.11:80")},
		err:    "port already used by farm default/webfarm",
	}, {
		name:   "log socket with a space",
		config: Config{Farms: []Farm{farm}, LogSocket: "/run/web farm/log.sock"},
		err:    `log socket "/run/web farm/log.sock"`,
	}, {
		name:   "relative log socket",
		config: Config{Farms: []Farm{farm}, LogSocket: "log.sock"},
		err:    "must be an absolute path",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.config.RuntimeSocket = testSocket
			cfg, err := Render(tc.config)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Render error = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(cfg), w) {
					t.Errorf("rendering lacks %q:\n%s", w, cfg)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(string(cfg), n) {
					t.Errorf("rendering holds %q:\n%s", n, cfg)
				}
			}
		})
	}
}
