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
