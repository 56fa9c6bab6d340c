package controllers

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/sites"
)

func TestSiteConditions(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	farm := &webfarmv1.WebFarm{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", CreationTimestamp: metav1.NewTime(t0)}}
	farm.Spec.FailoverIPs = []string{"vip"}
	site := func(name string, age time.Duration, tlsPort int32, hosts ...string) *webfarmv1.Site {
		s := &webfarmv1.Site{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, CreationTimestamp: metav1.NewTime(t0.Add(age))}}
		s.Spec.WebFarmRef.Name = "web"
		for _, h := range hosts {
			s.Spec.Hostnames = append(s.Spec.Hostnames, webfarmv1.Hostname(h))
		}
		if tlsPort != 0 {
			s.Spec.TLS = &webfarmv1.SiteTLS{SecretName: "tls", Port: tlsPort}
		}
		return s
	}
	old, late := site("old", 0, 443, "www.example.com"), site("late", time.Minute, 0, "www.example.com")
	onHTTP := site("onhttp", 0, 80, "x.example.com")
	lost := site("lost", 0, 0, "lost.example.com")
	lost.Spec.WebFarmRef.Name = "gone"
	w := siteWorld{
		sites:     []*webfarmv1.Site{old, late, onHTTP, lost},
		farms:     map[string]*webfarmv1.WebFarm{"shop/web": farm},
		addresses: map[string]string{"shop/vip": "192.0.2.10"},
	}
	refused := sites.Resolve(sites.Claims(w.farms, w.sites, w.addresses, nil))
	for _, tc := range []struct {
		site          *webfarmv1.Site
		certErr       error
		accepted      string
		certificate   string
		messageHolds  string
		wantEndpoints string
	}{
		{old, nil, webfarmv1.ReasonSiteAccepted, webfarmv1.ReasonCertificateValid, "", "http://192.0.2.10:80,https://192.0.2.10:443"},
		{late, nil, webfarmv1.ReasonConflict, webfarmv1.ReasonNoTLS, "Site shop/old already serves www.example.com on 192.0.2.10:80", "http://192.0.2.10:80"},
		{onHTTP, nil, webfarmv1.ReasonTLSPortIsHTTPPort, webfarmv1.ReasonCertificateValid, "spec.tls.port 80", "http://192.0.2.10:80,https://192.0.2.10:80"},
		{lost, nil, webfarmv1.ReasonWebFarmNotFound, webfarmv1.ReasonNoTLS, "WebFarm shop/gone", ""},
		{old, &sites.CertificateError{Reason: webfarmv1.ReasonCertificateExpired, Detail: "expired"}, webfarmv1.ReasonSiteAccepted, webfarmv1.ReasonCertificateExpired, "", "http://192.0.2.10:80,https://192.0.2.10:443"},
		{old, errors.New("Secret shop/tls does not exist"), webfarmv1.ReasonSiteAccepted, webfarmv1.ReasonSecretNotFound, "", "http://192.0.2.10:80,https://192.0.2.10:443"},
	} {
		st := siteStatus(tc.site, w, refused, tc.certErr, metav1.NewTime(t0))
		byType := map[string]metav1.Condition{}
		for _, c := range st.Conditions {
			byType[c.Type] = c
		}
		a, c := byType[webfarmv1.SiteAccepted], byType[webfarmv1.SiteCertificateValid]
		if a.Reason != tc.accepted || c.Reason != tc.certificate || !strings.Contains(a.Message, tc.messageHolds) || st.Endpoints != tc.wantEndpoints {
			t.Errorf("%s (cert error %v): Accepted %s %q, CertificateValid %s, endpoints %q; want %s (holding %q), %s, %q",
				tc.site.Name, tc.certErr, a.Reason, a.Message, c.Reason, st.Endpoints, tc.accepted, tc.messageHolds, tc.certificate, tc.wantEndpoints)
		}
	}
}

// TestSiteFronts: a site is live on a front whose HAProxy serves its
// generation and, where the agent manages nginx, whose vhost is of that
// generation too; a refusal names the front and nginx's words.
func TestSiteFronts(t *testing.T) {
	site := &webfarmv1.Site{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "www", Generation: 3}}
	withWeb := site.DeepCopy()
	withWeb.Spec.WebServer = &webfarmv1.SiteWebServer{Root: "/srv/www"}
	front := func(name string, s ...webfarmv1.NodeSiteStatus) webfarmv1.FrontNode {
		f := webfarmv1.FrontNode{ObjectMeta: metav1.ObjectMeta{Name: name}}
		f.Status.Sites = s
		return f
	}
	const refusal = "nginx -t refused the configuration: could not build server_names_hash"
	for _, tc := range []struct {
		name      string
		site      *webfarmv1.Site
		fronts    []webfarmv1.FrontNode
		live      int32
		reason    string
		messageIn []string
	}{
		{"no report", withWeb, []webfarmv1.FrontNode{front("a")}, 0, webfarmv1.ReasonVhostApplied, []string{"on 0 fronts"}},
		{"HAProxy only, nginx not managed", site, []webfarmv1.FrontNode{
			front("a", webfarmv1.NodeSiteStatus{Name: "shop/www", Generation: 3}),
			front("b", webfarmv1.NodeSiteStatus{Name: "shop/www", Generation: 2}),
		}, 1, webfarmv1.ReasonNoWebServer, nil},
		{"HAProxy and nginx", withWeb, []webfarmv1.FrontNode{
			front("a", webfarmv1.NodeSiteStatus{Name: "shop/www", Generation: 3, VhostGeneration: 3}),
			front("b", webfarmv1.NodeSiteStatus{Name: "shop/www", Generation: 3, VhostGeneration: 2}),
			front("c", webfarmv1.NodeSiteStatus{Name: "shop/other", Generation: 3, VhostGeneration: 3}),
		}, 1, webfarmv1.ReasonVhostApplied, []string{"on 1 fronts"}},
		{"refused on one front", withWeb, []webfarmv1.FrontNode{
			front("b", webfarmv1.NodeSiteStatus{Name: "shop/www", Generation: 3, VhostGeneration: 2, VhostRefused: refusal}),
			front("a", webfarmv1.NodeSiteStatus{Name: "shop/www", Generation: 3, VhostGeneration: 3}),
			front("c", webfarmv1.NodeSiteStatus{Name: "shop/www", Generation: 3, VhostRefused: refusal}),
		}, 1, webfarmv1.ReasonVhostRefused, []string{"front b: " + refusal, "front c: " + refusal, "previous vhost"}},
	} {
		live, c := siteFronts(tc.site, tc.fronts)
		if live != tc.live || c.Reason != tc.reason {
			t.Errorf("%s: live %d, %s; want %d, %s", tc.name, live, c.Reason, tc.live, tc.reason)
		}
		if (c.Status == metav1.ConditionFalse) != (tc.reason == webfarmv1.ReasonVhostRefused) {
			t.Errorf("%s: status %s with reason %s", tc.name, c.Status, c.Reason)
		}
		for _, want := range tc.messageIn {
			if !strings.Contains(c.Message, want) {
				t.Errorf("%s: message %q does not hold %q", tc.name, c.Message, want)
			}
		}
	}
}
