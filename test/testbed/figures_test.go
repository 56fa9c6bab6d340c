package testbed

import "testing"

func TestMetricsSum(t *testing.T) {
	m := Metrics{
		`webfarm_peer_datagrams_rejected_total{reason="bad_mac"}`:                   2,
		`webfarm_peer_datagrams_rejected_total{reason="replayed"}`:                  3,
		`webfarm_peer_datagrams_rejected_total_other{reason="bad_mac"}`:             100,
		`haproxy_frontend_http_responses_total{proxy="farm_a",code="5xx"}`:          4,
		`haproxy_frontend_http_responses_total{proxy="farm_b",code="5xx"}`:          1,
		`haproxy_frontend_http_responses_total{proxy="farm_b",code="2xx"}`:          50,
		`haproxy_frontend_http_responses_total{proxy="webfarm-metrics",code="5xx"}`: 7,
		`webfarm_haproxy_reloads_total`:                                             6,
	}
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"webfarm_peer_datagrams_rejected_total", nil, 5},
		{"webfarm_peer_datagrams_rejected_total", []string{`reason="bad_mac"`}, 2},
		{"haproxy_frontend_http_responses_total", []string{`proxy="farm_`, `code="5xx"`}, 5},
		{"webfarm_haproxy_reloads_total", nil, 6},
		{"webfarm_haproxy_up", nil, 0},
	} {
		if got := m.Sum(tc.name, tc.labels...); got != tc.want {
			t.Errorf("Sum(%s, %q) = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}
