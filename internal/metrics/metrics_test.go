package metrics

import (
	"crypto/tls"
	"slices"
	"testing"
)

func TestServingOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		serving Serving
		secure  bool
	}{
		{"secure", Serving{Secure: true, CertDir: "/certs"}, true},
		{"plain", Serving{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.serving.Options("10.0.0.1:8083")
			if o.BindAddress != "10.0.0.1:8083" || o.SecureServing != tc.secure || (o.FilterProvider != nil) != tc.secure {
				t.Fatalf("options %+v: want bind 10.0.0.1:8083, HTTPS and the API server's filter %v", o, tc.secure)
			}
			if !tc.secure {
				return
			}
			cfg := &tls.Config{NextProtos: []string{"h2"}}
			for _, f := range o.TLSOpts {
				f(cfg)
			}
			if !slices.Equal(cfg.NextProtos, []string{"http/1.1"}) || o.CertDir != "/certs" {
				t.Errorf("TLS protocols %q, cert dir %q: want HTTP/1.1 only and /certs", cfg.NextProtos, o.CertDir)
			}
		})
	}
}

func TestNames(t *testing.T) {
	names := Names(AgentCollectors()...)
	for _, want := range []string{"webfarm_haproxy_up", "webfarm_failover_fences_total", "webfarm_agent_api_request_duration_seconds"} {
		if !slices.Contains(names, want) {
			t.Errorf("Names(AgentCollectors()) = %q lacks %s", names, want)
		}
	}
	if got := Names(ControllerCollectors()...); !slices.Equal(got, []string{"webfarm_failoverip_owner_changes_total"}) {
		t.Errorf("Names(ControllerCollectors()) = %q", got)
	}
}
