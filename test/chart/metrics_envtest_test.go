package chart

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/webfarm/webfarm/internal/metrics"
)

// TestEnvtestSecuredMetrics: a metrics endpoint served as the binaries serve
// it (metrics.Serving, secure by default), with the rights the chart gives
// their ServiceAccounts, asks the real API server about every scraper:
// without a token, with the token of a ServiceAccount the chart's
// metrics-reader role is not bound to, or in clear HTTP, nothing is
// scraped; the ServiceAccount bound to it (metrics.scraper) reads /metrics
// and /metrics/haproxy. An endpoint whose ServiceAccount lacks the
// chart's metrics-auth role cannot vouch for anyone.
func TestEnvtestSecuredMetrics(t *testing.T) {
	cfg, admin := controlPlane(t)
	installWithScraper(t, admin)
	scraper := serviceAccountToken(t, admin, "prometheus")
	stranger := serviceAccountToken(t, admin, "stranger")

	if err := metrics.RegisterAgent(); err != nil {
		t.Fatal(err)
	}
	metrics.HAProxyUp.Set(1)

	for _, tc := range []struct {
		serverAs string // the endpoint's ServiceAccount
		vouches  bool   // it may ask for token and access reviews
	}{
		{"webfarm-controller", true},
		{"webfarm-agent", true},
		{"stranger", false},
	} {
		t.Run("served as "+tc.serverAs, func(t *testing.T) {
			addr := startMetricsServer(t, impersonatedConfig(cfg, tc.serverAs))
			get := func(scheme, path, token string) (int, string) {
				return scrape(t, scheme+"://"+addr+path, token)
			}
			for _, refused := range []struct{ name, scheme, token string }{
				{"no token", "https", ""},
				{"a ServiceAccount not bound to metrics-reader", "https", stranger},
				{"a forged token", "https", "forged"},
				{"clear HTTP", "http", scraper},
			} {
				if code, body := get(refused.scheme, "/metrics", refused.token); code == http.StatusOK {
					t.Errorf("%s: /metrics answered 200:\n%.200s", refused.name, body)
				} else {
					t.Logf("%s: %d", refused.name, code)
				}
			}
			for _, path := range []string{"/metrics", metrics.HAProxyPath} {
				code, body := get("https", path, scraper)
				switch {
				case !tc.vouches && code == http.StatusOK:
					t.Errorf("%s answered the scraper although the endpoint may not review tokens", path)
				case tc.vouches && code != http.StatusOK:
					t.Errorf("the scraper got %d from %s: %.300s", code, path, body)
				}
			}
			if !tc.vouches {
				return
			}
			if _, body := get("https", "/metrics", scraper); !strings.Contains(body, "\nwebfarm_haproxy_up 1\n") {
				t.Errorf("/metrics lacks webfarm_haproxy_up 1:\n%.500s", body)
			}
		})
	}
}

// installWithScraper installs the chart as installForRBAC does, with its
// metrics-reader role bound to ServiceAccount prometheus.
func installWithScraper(t *testing.T, admin client.Client) {
	t.Helper()
	ensureNamespaces(t, admin, namespace, "shop", "blog")
	if err := apply(context.Background(), admin, mustHelmTemplate(t, "--set", "farmNamespaces={shop}",
		"--set", "metrics.scraper.serviceAccount.name=prometheus")); err != nil {
		t.Fatalf("installing the chart: %v", err)
	}
}

// startMetricsServer serves controller-runtime's registry on loopback as
// the binaries do, authenticating and authorizing through the API server
// with cfg, and returns its address.
func startMetricsServer(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := metricsserver.NewServer(metrics.Serving{Secure: true}.Options("127.0.0.1:0"), cfg, httpClient)
	if err != nil {
		t.Fatal(err)
	}
	// What the agent's endpoint serves from HAProxy: here a fixed line, since
	// only who may read the path is under test (agent.TestExporterProxy
	// tests the passing on).
	if err := srv.AddExtraHandler(metrics.HAProxyPath, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "haproxy_process_nbthread 1\n")
	})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("metrics server: %v", err)
		}
	})
	bound := srv.(interface{ GetBindAddr() string })
	var addr string
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		addr = bound.GetBindAddr()
		return addr != "", nil
	}); err != nil {
		t.Fatalf("the metrics server did not listen: %v", err)
	}
	return addr
}

// scrape GETs url with a bearer token (none when empty), trusting any
// certificate: the endpoint's is self-signed.
func scrape(t *testing.T, url, token string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed, as in the chart's default
	}}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// serviceAccountToken creates ServiceAccount name in the release namespace
// and returns a token of it, as the kubelet would mount it.
func serviceAccountToken(t *testing.T, admin client.Client, name string) string {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if err := admin.Create(ctx, sa); client.IgnoreAlreadyExists(err) != nil {
		t.Fatalf("creating ServiceAccount %s: %v", name, err)
	}
	req := &authenticationv1.TokenRequest{}
	if err := admin.SubResource("token").Create(ctx, sa, req); err != nil {
		t.Fatalf("requesting a token of %s: %v", name, err)
	}
	return req.Status.Token
}
