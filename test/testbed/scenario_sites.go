package testbed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/testcerts"
)

const (
	// secureTLSPort is the samples' www Site's spec.tls.port.
	secureTLSPort = "443"
	// sitesLoadRate is the HTTPS visitors a second across a rotation.
	sitesLoadRate = 50
)

// SitesHTTPS: the samples' two Sites, each front's nginx serving their
// vhosts as its agent wrote them. The scenario creates the www Secret from
// a local CA the client trusts. Through the VIP: both hostnames answered by
// their own document root on every front, plain HTTP redirected to HTTPS
// with HSTS, HTTP/2 through ALPN; a rotation of the Secret under HTTPS load
// fails no request; a certificate with the wrong key is reported in the
// Site's status and never loaded, while the shop keeps serving and www
// keeps its previous certificate.
func SitesHTTPS(ctx context.Context, tb *Testbed) (*Result, error) {
	r := newResult("6. sites")
	ca, err := testcerts.NewCA("webfarm testbed CA")
	if err != nil {
		return r, err
	}
	s := &sitesRun{tb: tb, r: r, ca: ca, client: SiteClient(ca.Pool())}
	start := time.Now()
	steps := []func(context.Context) error{s.serve, s.everyFront, s.redirect, s.http2, s.rotate, s.refuse}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return r, err
		}
	}
	err = tb.WaitReady(ctx, readyTimeout)
	r.Figures["scenario"] = time.Since(start)
	tb.say("   (the Sites scenario took %s)", round(time.Since(start)))
	return r, err
}

// sitesRun is one run of SitesHTTPS: its client trusts ca, and current is
// the certificate the www Secret holds.
type sitesRun struct {
	tb      *Testbed
	r       *Result
	ca      *testcerts.CA
	client  *http.Client
	current testcerts.Pair
}

var (
	secureURL = "https://" + SecureHost + "/"
	plainURL  = "http://" + PlainHost + "/"
)

// serve creates the Secret, and waits for HTTPS through the VIP with its
// certificate and for both Sites live on every front.
func (s *sitesRun) serve(ctx context.Context) error {
	tb := s.tb
	tb.say("\n== 6. Sites: %s over HTTPS (Secret %s, from a local CA the client trusts) and %s over plain HTTP, each front's nginx serving the vhosts its agent wrote",
		SecureHost, SecureSecret, PlainHost)
	pair, err := s.ca.Issue(SecureHost, "example.com")
	if err != nil {
		return err
	}
	start := time.Now()
	if err := s.putSecret(ctx, pair.Cert, pair.Key); err != nil {
		return err
	}
	s.current = pair
	if err := s.waitCertificate(ctx, pair.Leaf); err != nil {
		return s.r.check(false, "HTTPS with the Secret's certificate", "%v", err)
	}
	s.r.figure("secret-to-https", "Secret created to HTTPS served with it", time.Since(start))
	tb.say("   kubectl create secret tls %s: served over HTTPS through the VIP %s later", SecureSecret, round(time.Since(start)))
	for _, site := range []string{SecureSite, PlainSite} {
		st, err := s.waitSite(ctx, site, func(st webfarmv1.SiteStatus) bool {
			return int(st.FrontsServing) == len(tb.fronts) &&
				meta.IsStatusConditionTrue(st.Conditions, webfarmv1.SiteVhostApplied) &&
				meta.IsStatusConditionTrue(st.Conditions, webfarmv1.SiteCertificateValid)
		})
		got := fmt.Sprintf("frontsServing %d of %d, %s", st.FrontsServing, len(tb.fronts), conditionSummary(st))
		tb.say("   Site %s: %s", site, got)
		if err := s.r.check(err == nil, "Site "+site+" live with its vhost on every front", "%s", got); err != nil {
			return err
		}
	}
	return nil
}

// everyFront: new visitors of each hostname are answered by that site's
// document root, from every front.
func (s *sitesRun) everyFront(ctx context.Context) error {
	n := 4 * len(s.tb.fronts)
	for _, site := range []struct{ name, url string }{{SecureSite, secureURL}, {PlainSite, plainURL}} {
		fronts := map[string]int{}
		wrong := 0
		for range n {
			resp, err := Get(ctx, s.client, site.url)
			if err != nil {
				return s.r.check(false, site.url+" answered", "%v", err)
			}
			if resp.Status != http.StatusOK || resp.Body != SiteBody(site.name) {
				wrong++
				continue
			}
			fronts[resp.Front]++
		}
		s.tb.say("   %d new visitors of %s: answered %q by %s; %d by anything else", n, site.url, SiteBody(site.name), formatCounts(fronts), wrong)
		ok := wrong == 0 && len(fronts) == len(s.tb.fronts) && fronts[""] == 0
		if err := s.r.check(ok, site.url+" by its own site on every front", "%s, %d wrong", formatCounts(fronts), wrong); err != nil {
			return err
		}
	}
	return nil
}

// redirect: plain HTTP to the secure site is sent to HTTPS; its answers
// carry HSTS, the plain site's do not.
func (s *sitesRun) redirect(ctx context.Context) error {
	for _, tc := range []struct {
		url, location, hsts string
		status              int
	}{
		{url: "http://" + SecureHost + "/page?x=1", status: http.StatusMovedPermanently, location: "https://" + SecureHost + "/page?x=1"},
		{url: secureURL, status: http.StatusOK, hsts: "max-age=31536000"},
		{url: plainURL, status: http.StatusOK},
	} {
		resp, err := Get(ctx, s.client, tc.url)
		if err != nil {
			return s.r.check(false, tc.url, "%v", err)
		}
		loc, hsts := resp.Header.Get("Location"), resp.Header.Get("Strict-Transport-Security")
		got := fmt.Sprintf("%d Location %q HSTS %q", resp.Status, loc, hsts)
		s.tb.say("   %s: %s", tc.url, got)
		if err := s.r.check(resp.Status == tc.status && loc == tc.location && hsts == tc.hsts, tc.url+": redirect and HSTS", "%s", got); err != nil {
			return err
		}
	}
	return nil
}

// http2: the client offers h2 and http/1.1; HAProxy picks h2.
func (s *sitesRun) http2(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, secureURL, nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return s.r.check(false, "HTTP/2 through ALPN", "%v", err)
	}
	resp.Body.Close()
	alpn := resp.TLS.NegotiatedProtocol
	s.tb.say("   %s: %s, ALPN %q, TLS %s", secureURL, resp.Proto, alpn, tls.VersionName(resp.TLS.Version))
	return s.r.check(resp.ProtoMajor == 2 && alpn == "h2", "HTTP/2 through ALPN", "%s, ALPN %q", resp.Proto, alpn)
}

// rotate renews the certificate in its Secret while new HTTPS visitors
// keep coming: none may fail.
func (s *sitesRun) rotate(ctx context.Context) error {
	next, err := s.ca.Issue(SecureHost, "example.com")
	if err != nil {
		return err
	}
	load := StartLoad(LoadOptions{URL: secureURL, Rate: sitesLoadRate, Client: s.client})
	defer load.Stop()
	if err := waitServedBy(load, "", time.Time{}); err != nil {
		return err
	}
	start := time.Now()
	if err := s.putSecret(ctx, next.Cert, next.Key); err != nil {
		return err
	}
	if err := s.waitCertificate(ctx, next.Leaf); err != nil {
		return s.r.check(false, "renewed certificate served", "%v", err)
	}
	took := time.Since(start)
	s.current = next
	// Two seconds more of load on the new certificate.
	if err := waitOKAfter(load, time.Now(), 2*sitesLoadRate); err != nil {
		return err
	}
	res := load.Stop()
	s.r.figure("rotation", "Secret renewed to its certificate served", took)
	s.r.Counts["rotation-requests"], s.r.Counts["rotation-failed"] = len(res.Samples), res.Failed()
	s.tb.say("   kubectl apply of a renewed Secret under %d HTTPS visitors/s: the new certificate served %s later; %d requests, %d failed",
		sitesLoadRate, round(took), len(res.Samples), res.Failed())
	return s.r.check(res.Failed() == 0, "failed requests across a certificate rotation", "%d of %d %v", res.Failed(), len(res.Samples), res.FirstErrors(3))
}

// refuse puts a certificate with another's key in the Secret: the Site's
// status says so, HAProxy keeps the certificate last found valid, and
// both sites serve on throughout; then the good pair goes back.
func (s *sitesRun) refuse(ctx context.Context) error {
	other, err := s.ca.Issue(SecureHost, "example.com")
	if err != nil {
		return err
	}
	loads := map[string]*Load{}
	for _, url := range []string{secureURL, plainURL} {
		loads[url] = StartLoad(LoadOptions{URL: url, Rate: sitesLoadRate / 2, Client: s.client})
		defer loads[url].Stop()
	}
	start := time.Now()
	if err := s.putSecret(ctx, other.Cert, s.current.Key); err != nil {
		return err
	}
	st, err := s.waitSite(ctx, SecureSite, func(st webfarmv1.SiteStatus) bool {
		c := meta.FindStatusCondition(st.Conditions, webfarmv1.SiteCertificateValid)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == webfarmv1.ReasonKeyMismatch
	})
	took := time.Since(start)
	s.tb.say("   a certificate with the wrong key in the Secret: Site %s %s, %s later", SecureSite, conditionSummary(st), round(took))
	if err := s.r.check(err == nil, "wrong key reported in the Site's status", "%s", conditionSummary(st)); err != nil {
		return err
	}
	s.r.figure("refusal-reported", "wrong key in the Secret to the Site's status", took)
	refusedBy, err := s.waitFrontsRefuse(ctx, "does not match")
	s.tb.say("   every front's agent read it and refused it: %s", refusedBy)
	if err := s.r.check(err == nil, "every front refuses the wrong key", "%s %v", refusedBy, err); err != nil {
		return err
	}
	served, err := s.servedCertificate(ctx)
	kept := err == nil && served.SerialNumber.Cmp(s.current.Leaf.SerialNumber) == 0
	s.tb.say("   HTTPS keeps the certificate last found valid: %t (%v)", kept, err)
	if err := s.r.check(kept, "the refused certificate is never loaded", "previous certificate served: %t %v", kept, err); err != nil {
		return err
	}
	for _, url := range []string{secureURL, plainURL} {
		// Two seconds of each at the least.
		if err := waitOKAfter(loads[url], start, sitesLoadRate); err != nil {
			return err
		}
		res := loads[url].Stop()
		s.tb.say("   %s meanwhile: %d requests, %d failed", url, len(res.Samples), res.Failed())
		if err := s.r.check(res.Failed() == 0 && len(res.Samples) > 0, url+" serves on", "%d of %d failed %v", res.Failed(), len(res.Samples), res.FirstErrors(3)); err != nil {
			return err
		}
	}
	if err := s.putSecret(ctx, s.current.Cert, s.current.Key); err != nil {
		return err
	}
	_, err = s.waitSite(ctx, SecureSite, func(st webfarmv1.SiteStatus) bool {
		return meta.IsStatusConditionTrue(st.Conditions, webfarmv1.SiteCertificateValid)
	})
	return err
}

// waitFrontsRefuse waits until every front reports the www Site with a
// message holding words, and returns the first front's message.
func (s *sitesRun) waitFrontsRefuse(ctx context.Context, words string) (string, error) {
	key := SamplesNamespace + "/" + SecureSite
	var msg string
	err := WaitFor(func() (bool, error) {
		var fronts webfarmv1.FrontNodeList
		if err := s.tb.KubeClient().List(ctx, &fronts); err != nil {
			return false, err
		}
		told := 0
		for _, f := range fronts.Items {
			for _, st := range f.Status.Sites {
				if st.Name == key && strings.Contains(st.Message, words) {
					told, msg = told+1, f.Name+": "+st.Message
				}
			}
		}
		return told == len(s.tb.fronts), nil
	}, changeTimeout)
	return msg, err
}

// putSecret creates or updates the www Secret.
func (s *sitesRun) putSecret(ctx context.Context, crt, key []byte) error {
	c := s.tb.KubeClient()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: SamplesNamespace, Name: SecureSecret}, Type: corev1.SecretTypeTLS}
	secret.Data = map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}
	err := c.Create(ctx, secret)
	if apierrors.IsAlreadyExists(err) {
		err = c.Update(ctx, secret)
	}
	if err != nil {
		return fmt.Errorf("writing Secret %s: %w", SecureSecret, err)
	}
	return nil
}

// waitCertificate waits until HTTPS through the VIP presents want.
func (s *sitesRun) waitCertificate(ctx context.Context, want *x509.Certificate) error {
	var last error
	err := WaitFor(func() (bool, error) {
		got, err := s.servedCertificate(ctx)
		if last = err; err != nil {
			return false, nil
		}
		return got.SerialNumber.Cmp(want.SerialNumber) == 0, nil
	}, changeTimeout)
	if err != nil {
		return fmt.Errorf("%s never presented certificate %x: %w (last: %v)", secureURL, want.SerialNumber, err, last)
	}
	return nil
}

// servedCertificate is the certificate HTTPS through the VIP presents for
// the secure host, verified against the CA.
func (s *sitesRun) servedCertificate(ctx context.Context) (*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	raw, err := DialInNamespace(ClientNS)(ctx, "tcp", net.JoinHostPort(VIP, secureTLSPort))
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, &tls.Config{ServerName: SecureHost, RootCAs: s.ca.Pool()})
	defer conn.Close()
	if err := conn.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return conn.ConnectionState().PeerCertificates[0], nil
}

// waitSite waits until the status of the sample Site name satisfies ok,
// and returns the last status read.
func (s *sitesRun) waitSite(ctx context.Context, name string, ok func(webfarmv1.SiteStatus) bool) (webfarmv1.SiteStatus, error) {
	var site webfarmv1.Site
	err := WaitFor(func() (bool, error) {
		if err := s.tb.KubeClient().Get(ctx, client.ObjectKey{Namespace: SamplesNamespace, Name: name}, &site); err != nil {
			return false, err
		}
		return site.Status.ObservedGeneration == site.Generation && ok(site.Status), nil
	}, changeTimeout)
	return site.Status, err
}

// conditionSummary is each condition of a Site as Type=Status(Reason).
func conditionSummary(st webfarmv1.SiteStatus) string {
	out := ""
	for i, c := range st.Conditions {
		if i > 0 {
			out += " "
		}
		out += fmt.Sprintf("%s=%s(%s)", c.Type, c.Status, c.Reason)
	}
	return out
}

// SiteClient is a browser in the client namespace that reaches every name
// at the VIP, as curl --resolve does, trusting roots. Every request is a
// new visitor on a new connection (a new TLS handshake), offering h2.
func SiteClient(roots *x509.CertPool) *http.Client {
	dial := DialInNamespace(ClientNS)
	return &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, _ := net.SplitHostPort(addr)
				return dial(ctx, network, net.JoinHostPort(VIP, port))
			},
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true,
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
