package haproxy

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// TestRenderPassiveHealth: what reaches HAProxy of the passive check, the
// fronts' connect timeout, the redispatch and the retries, for each way of
// setting them.
func TestRenderPassiveHealth(t *testing.T) {
	off, zero := false, int32(0)
	cases := []struct {
		name string
		edit func(*webfarmv1.WebFarmSpec)
		want []string // lines, or parts of lines, that must appear
		not  []string // ... and that must not
		err  string
	}{
		{"defaults", func(*webfarmv1.WebFarmSpec) {},
			[]string{"default-server inter 2000ms fastinter 500ms rise 2 fall 3 observe layer4 error-limit 3 on-error mark-down\n",
				"timeout connect 100ms\n", "timeout check 1000ms\n", "option redispatch 1\n", "retries 3\n",
				"retry-on conn-failure empty-response\n", "http-request disable-l7-retry unless METH_GET\n"}, nil, ""},
		{"layer7, limit 10", func(s *webfarmv1.WebFarmSpec) {
			s.HealthCheck.Observe, s.HealthCheck.ErrorLimit = webfarmv1.ObserveLayer7, 10
		}, []string{" observe layer7 error-limit 10 on-error mark-down\n"}, nil, ""},
		{"none", func(s *webfarmv1.WebFarmSpec) {
			s.HealthCheck.Observe, s.HealthCheck.ErrorLimit = webfarmv1.ObserveNone, 7
		}, []string{"default-server inter 2000ms fastinter 500ms rise 2 fall 3\n"}, []string{"observe", "error-limit"}, ""},
		{"a hung web server found sooner", func(s *webfarmv1.WebFarmSpec) {
			s.HealthCheck.FastInterval = metav1.Duration{Duration: 200 * time.Millisecond}
			s.HealthCheck.Timeout = metav1.Duration{Duration: 300 * time.Millisecond}
		}, []string{" fastinter 200ms ", "timeout check 300ms\n"}, nil, ""},
		{"slow network", func(s *webfarmv1.WebFarmSpec) {
			s.Timeouts.Connect = metav1.Duration{Duration: 3 * time.Second}
		}, []string{"timeout connect 3000ms\n"}, nil, ""},
		{"no redispatch", func(s *webfarmv1.WebFarmSpec) { s.Backend.Redispatch = &off },
			nil, []string{"redispatch"}, ""},
		{"no retries", func(s *webfarmv1.WebFarmSpec) { s.Backend.Retries = &zero },
			[]string{"retries 0\n"}, []string{"retry-on", "l7-retry"}, ""},
		{"uploads: a 404 retried elsewhere", func(s *webfarmv1.WebFarmSpec) { s.Uploads = media() },
			[]string{"retry-on conn-failure empty-response 404\n", "http-request disable-l7-retry unless METH_GET\n"}, nil, ""},
		{"uploads without redispatch: no 404 retried on the same front", func(s *webfarmv1.WebFarmSpec) {
			s.Uploads, s.Backend.Redispatch = media(), &off
		}, []string{"retry-on conn-failure empty-response\n"}, []string{"404"}, ""},
		{"uploads without retries", func(s *webfarmv1.WebFarmSpec) { s.Uploads, s.Backend.Retries = media(), &zero },
			[]string{"retries 0\n"}, []string{"retry-on", "404"}, ""},
		{"unknown mode", func(s *webfarmv1.WebFarmSpec) { s.HealthCheck.Observe = "layer4" },
			nil, nil, `spec.healthCheck.observe "layer4": must be None, Layer4 or Layer7`},
		{"check timeout too short", func(s *webfarmv1.WebFarmSpec) { s.HealthCheck.Timeout = metav1.Duration{Duration: time.Millisecond} },
			nil, nil, "spec.healthCheck.timeout 1ms: must be between 10ms and 1h0m0s"},
		{"limit too high", func(s *webfarmv1.WebFarmSpec) { s.HealthCheck.ErrorLimit = 101 },
			nil, nil, "spec.healthCheck.errorLimit 101: must be between 1 and 100"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := goldenConfigs(t)["defaults"].Farms[0]
			tc.edit(&f.Spec)
			cfg, err := Render(Config{Farms: []Farm{f}, RuntimeSocket: testSocket})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(cfg), w) {
					t.Errorf("no %q in:\n%s", w, cfg)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(string(cfg), n) {
					t.Errorf("%q in:\n%s", n, cfg)
				}
			}
		})
	}
}

// media declares one uploads directory.
func media() *webfarmv1.UploadsSpec {
	return &webfarmv1.UploadsSpec{Directories: []webfarmv1.UploadDirectory{{Name: "media", Path: "/srv/www/media"}}}
}
