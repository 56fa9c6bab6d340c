package agent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/testenv"
)

// The agent passes a scrape of /metrics/haproxy on to HAProxy's exporter,
// wherever the options put it, without the scraper's token; it answers 503
// while it cannot tell where the exporter is.
func TestExporterProxy(t *testing.T) {
	var got *http.Request
	haproxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		_, _ = io.WriteString(w, "haproxy_process_current_connections 3\n")
	}))
	defer haproxy.Close()
	port := strconv.Itoa(int(netip.MustParseAddrPort(haproxy.Listener.Addr().String()).Port()))
	front1 := &webfarmv1.FrontNode{ObjectMeta: metav1.ObjectMeta{Name: "front1"}, Spec: webfarmv1.FrontNodeSpec{Address: "127.0.0.1"}}
	cache := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(front1).Build()

	for _, tc := range []struct {
		name, node, exporter string
		status               int
	}{
		{"on the node's address", "front1", "node:" + port, http.StatusOK},
		{"on loopback", "front2", "127.0.0.1:" + port, http.StatusOK},
		{"node address not known yet", "front2", "node:" + port, http.StatusServiceUnavailable},
		{"exporter off", "front1", "off", http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			p := exporterProxy{opts: Options{NodeName: tc.node, HAProxyMetrics: tc.exporter}, cache: cache}
			req := httptest.NewRequest(http.MethodGet, "/metrics/haproxy?scope=server", nil)
			req.Header.Set("Authorization", "Bearer scraper-token")
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status != http.StatusOK {
				if got != nil {
					t.Fatal("the request reached HAProxy")
				}
				return
			}
			if got.URL.Path != "/metrics" || got.URL.RawQuery != "scope=server" {
				t.Errorf("HAProxy was asked for %s, want /metrics?scope=server", got.URL)
			}
			if a := got.Header.Get("Authorization"); a != "" {
				t.Errorf("HAProxy received the scraper's token %q", a)
			}
			if rec.Body.String() != "haproxy_process_current_connections 3\n" {
				t.Errorf("body %q", rec.Body)
			}
		})
	}
}
