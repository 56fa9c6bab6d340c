package haproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/netnstest"
	"github.com/webfarm/webfarm/internal/testcerts"
)

// The failover address of the sites test, added to the namespace only
// after HAProxy started: HAProxy binds it before the node holds it.
const (
	siteVIP       = "10.98.0.100"
	siteHTTPPort  = 8080
	siteHTTPSPort = 8443
)

// TestNodeSites runs two farms sharing one failover address with two HTTPS
// sites, and checks through the real HAProxy what a browser would see:
// the certificate each SNI gets, HTTP/2, the redirect, HSTS, routing by
// Host, X-Forwarded-Proto, and the sticky cookie of each backend.
func TestNodeSites(t *testing.T) {
	ns := newNamespace(t)
	p := newNodeProcess(t, ns)
	for _, f := range nodeFronts {
		startSiteServer(t, ns, f, nodeWebPort, "a")
		startSiteServer(t, ns, f, nodeWebPort+1000, "b")
	}
	c, roots := sitesNodeConfig(t, p)
	if !apply(t, p, c) {
		t.Fatal("Apply did not start haproxy")
	}
	// The address arrives after HAProxy bound it, as on a front that
	// takes over a failover address: no reload needed.
	ns.MustRun(t, "ip", "addr", "add", siteVIP+"/32", "dev", "lo")
	client := siteClient(ns, roots)
	waitServed(t, client, "https://a.example.com:8443/")

	t.Run("SNI chooses the certificate", func(t *testing.T) {
		for sni, want := range map[string]string{
			"a.example.com":     "a.example.com",
			"www.b.example.com": "*.b.example.com",
			"unknown.example":   "webfarm test",
		} {
			state := handshake(t, ns, sni, []string{"h2", "http/1.1"})
			if got := state.PeerCertificates[0].Subject.CommonName; got != want {
				t.Errorf("SNI %s: got the certificate of %s, want %s", sni, got, want)
			}
			if state.NegotiatedProtocol != "h2" {
				t.Errorf("SNI %s: ALPN chose %q, want h2", sni, state.NegotiatedProtocol)
			}
			if state.Version < tls.VersionTLS12 {
				t.Errorf("SNI %s: TLS version %x", sni, state.Version)
			}
		}
	})
	t.Run("TLS 1.1 refused", func(t *testing.T) {
		err := ns.Do(func() error {
			conn, err := tls.Dial("tcp", net.JoinHostPort(siteVIP, strconv.Itoa(siteHTTPSPort)),
				&tls.Config{ServerName: "a.example.com", RootCAs: roots, MaxVersion: tls.VersionTLS11})
			if err == nil {
				conn.Close()
			}
			return err
		})
		if err == nil {
			t.Error("a TLS 1.1 handshake succeeded")
		}
	})
	t.Run("routing, headers and redirect", func(t *testing.T) {
		for _, tc := range []struct {
			url, body, location, hsts string
			status, proto             int
		}{
			{url: "https://a.example.com:8443/x", status: 200, body: "a proto=https", hsts: "max-age=600; includeSubDomains", proto: 2},
			{url: "https://www.b.example.com:8443/", status: 200, body: "b proto=https", proto: 2},
			{url: "http://www.b.example.com:8080/", status: 200, body: "b proto=http", proto: 1},
			{url: "http://a.example.com:8080/x?y=1", status: 301, location: "https://a.example.com:8443/x?y=1", proto: 1},
			{url: "http://nobody.example.com:8080/", status: 404, proto: 1},
			{url: "http://a.b.b.example.com:8080/", status: 404, proto: 1},
		} {
			resp, body := fetch(t, client, tc.url)
			if resp.StatusCode != tc.status || !strings.HasPrefix(body, tc.body) || resp.ProtoMajor != tc.proto {
				t.Errorf("%s: %s %s %q, want %d HTTP/%d %q", tc.url, resp.Proto, resp.Status, body, tc.status, tc.proto, tc.body)
			}
			if got := resp.Header.Get("Location"); got != tc.location {
				t.Errorf("%s: Location %q, want %q", tc.url, got, tc.location)
			}
			if got := resp.Header.Get("Strict-Transport-Security"); got != tc.hsts {
				t.Errorf("%s: Strict-Transport-Security %q, want %q", tc.url, got, tc.hsts)
			}
		}
	})
	t.Run("certificate rotation under load", func(t *testing.T) { testRotation(t, ns, p, c, roots, client) })
	t.Run("sticky cookie per backend", func(t *testing.T) {
		first, _ := fetch(t, client, "https://a.example.com:8443/")
		cookie := first.Header.Get("Set-Cookie")
		if !strings.HasPrefix(cookie, "SERVERID=") {
			t.Fatalf("no sticky cookie: %q", cookie)
		}
		value := strings.TrimPrefix(strings.Split(cookie, ";")[0], "SERVERID=")
		front := map[string]string{"cookie1": "front1", "cookie2": "front2"}[value]
		for range 6 {
			req, _ := http.NewRequest(http.MethodGet, "https://a.example.com:8443/", nil)
			req.Header.Set("Cookie", "SERVERID="+value)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.HasSuffix(string(body), front) {
				t.Fatalf("cookie %s reached %q, want %s", value, body, front)
			}
		}
	})
}

// sitesNodeConfig: farm default/a (web port 5080) and default/b (6080) on
// one failover address, each with an HTTPS site; and the pool that
// trusts their certificates.
func sitesNodeConfig(t *testing.T, p *Process) (Config, *x509.CertPool) {
	roots := x509.NewCertPool()
	cert := func(names ...string) []byte {
		pair, err := testcerts.Valid(names...)
		if err != nil {
			t.Fatal(err)
		}
		roots.AddCert(pair.Leaf)
		return append(pair.Cert, pair.Key...)
	}
	second := metav1.Duration{Duration: 100 * time.Millisecond}
	farm := func(key string, webPort int32) Farm {
		return Farm{
			Key: key,
			Spec: webfarmv1.WebFarmSpec{
				Frontend:    webfarmv1.FrontendSpec{Port: siteHTTPPort},
				Backend:     webfarmv1.BackendSpec{WebPort: webPort, DrainPort: webPort + 1},
				HealthCheck: webfarmv1.HealthCheckSpec{Interval: second, Rise: 1, Fall: 3},
			},
			Fronts:    nodeFronts,
			Addresses: []netip.Addr{netip.MustParseAddr(siteVIP)},
		}
	}
	return Config{
		Farms: []Farm{farm("default/a", nodeWebPort), farm("default/b", nodeWebPort+1000)},
		Sites: []Site{
			{Key: "default/a", Farm: "default/a", Hostnames: []string{"a.example.com"}, TLSPort: siteHTTPSPort,
				Certificate: cert("a.example.com"), RedirectToHTTPS: true, HSTS: &HSTS{MaxAgeSeconds: 600, IncludeSubDomains: true}},
			{Key: "default/b", Farm: "default/b", Hostnames: []string{"*.b.example.com"}, TLSPort: siteHTTPSPort,
				Certificate: cert("*.b.example.com")},
		},
		DefaultCertificate: cert(),
		RuntimeSocket:      p.RuntimeSocket(),
	}, roots
}

// startSiteServer answers with the farm's label, the proto HAProxy
// forwarded and the front's name, on the web port and on the drain port.
func startSiteServer(t *testing.T, ns *netnstest.NS, f Front, webPort int, label string) {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s proto=%s %s", label, r.Header.Get("X-Forwarded-Proto"), f.Name)
	})}
	for _, port := range []int{webPort, webPort + 1} {
		l := ns.MustListen(t, netip.AddrPortFrom(f.Address, uint16(port)))
		go func() { _ = srv.Serve(l) }()
	}
	t.Cleanup(func() { _ = srv.Close() })
}

// siteClient dials the failover address inside ns whatever the URL's
// host, as curl --resolve does, and speaks HTTP/2 when offered.
func siteClient(ns *netnstest.NS, roots *x509.CertPool) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, _ := net.SplitHostPort(addr)
		var conn net.Conn
		err := ns.Do(func() error {
			var err error
			conn, err = (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(siteVIP, port))
			return err
		})
		return conn, err
	}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:       dial,
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true,
			DisableKeepAlives: true,
		},
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// handshake opens a TLS connection to the failover address with sni.
func handshake(t *testing.T, ns *netnstest.NS, sni string, protos []string) tls.ConnectionState {
	t.Helper()
	var state tls.ConnectionState
	err := ns.Do(func() error {
		conn, err := tls.Dial("tcp", net.JoinHostPort(siteVIP, strconv.Itoa(siteHTTPSPort)),
			&tls.Config{ServerName: sni, NextProtos: protos, InsecureSkipVerify: true})
		if err != nil {
			return err
		}
		defer conn.Close()
		state = conn.ConnectionState()
		return nil
	})
	if err != nil {
		t.Fatalf("TLS handshake with SNI %s: %v", sni, err)
	}
	return state
}

func fetch(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, string(body)
}

// waitServed polls url until it answers 200: the servers' first checks.
func waitServed(t *testing.T, c *http.Client, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last string
	err := poll(ctx, url+" served", func() (bool, error) {
		resp, err := c.Get(url)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("%v; last: %s", err, last)
	}
}

// testRotation renews site a's certificate three times while clients keep
// asking over HTTPS, each on a new connection: every reload must be
// hitless, and the new certificate served.
func testRotation(t *testing.T, ns *netnstest.NS, p *Process, c Config, roots *x509.CertPool, client *http.Client) {
	// Trusted before the load starts: a CertPool is not for concurrent use.
	var renewals []testcerts.Pair
	for range 3 {
		pair, err := testcerts.Valid("a.example.com")
		if err != nil {
			t.Fatal(err)
		}
		roots.AddCert(pair.Leaf)
		renewals = append(renewals, pair)
	}
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
				resp, err := client.Get("https://a.example.com:8443/")
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("%s", resp.Status)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	var serial string
	for _, pair := range renewals {
		c.Sites[0].Certificate = append(pair.Cert, pair.Key...)
		serial = pair.Leaf.SerialNumber.String()
		if !apply(t, p, c) {
			t.Fatal("a new certificate did not reload HAProxy")
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("3 certificate rotations under HTTPS load: %d requests, %d failed", sent.Load(), failed.Load())
	if failed.Load() > 0 {
		t.Errorf("%d of %d requests failed across rotations; first: %v", failed.Load(), sent.Load(), firstErr.Load())
	}
	if got := handshake(t, ns, "a.example.com", nil).PeerCertificates[0].SerialNumber.String(); got != serial {
		t.Errorf("serving certificate %s, want the last one, %s", got, serial)
	}
}
