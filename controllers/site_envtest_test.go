package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/testcerts"
)

// TestEnvtestSiteStatus: on a real kube-apiserver, the controller tells
// each Site whether its names are its own (a conflict lands on the
// newcomer and names both) and whether its certificate can be loaded.
func TestEnvtestSiteStatus(t *testing.T) {
	h := startHarness(t)
	ns := "sites"
	h.createNamespace(ns)
	h.createFarm(ns, "web", map[string]string{"role": "web"}, "vip")
	h.createFailoverIP(ns, "vip", "192.0.2.50", "", false)
	h.createTLSSecret(ns, "www-tls", time.Hour, "www.example.com")
	h.createTLSSecret(ns, "old-tls", -time.Minute, "old.example.com")

	h.createSite(ns, "a-first", "web", "www-tls", "www.example.com")
	h.site(ns, "a-first", "accepted, certificate valid", conditions(
		webfarmv1.SiteAccepted, webfarmv1.ReasonSiteAccepted, webfarmv1.SiteCertificateValid, webfarmv1.ReasonCertificateValid), func(st webfarmv1.SiteStatus) error {
		if st.Endpoints != "http://192.0.2.50:80,https://192.0.2.50:443" {
			return fmt.Errorf("endpoints %q", st.Endpoints)
		}
		return nil
	})

	h.createSite(ns, "b-second", "web", "", "shop.example.com", "www.example.com")
	st := h.site(ns, "b-second", "the newcomer in conflict", conditions(webfarmv1.SiteAccepted, webfarmv1.ReasonConflict, webfarmv1.SiteCertificateValid, webfarmv1.ReasonNoTLS))
	msg := meta.FindStatusCondition(st.Conditions, webfarmv1.SiteAccepted).Message
	for _, want := range []string{"sites/b-second", "Site sites/a-first", "www.example.com", "192.0.2.50:80"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Conflict message %q does not name %s", msg, want)
		}
	}
	h.site(ns, "a-first", "the established site stays accepted", conditions(webfarmv1.SiteAccepted, webfarmv1.ReasonSiteAccepted))

	h.createSite(ns, "expired", "web", "old-tls", "old.example.com")
	h.site(ns, "expired", "an expired certificate", conditions(webfarmv1.SiteCertificateValid, webfarmv1.ReasonCertificateExpired))
	h.createSite(ns, "uncovered", "web", "www-tls", "blog.example.com")
	h.site(ns, "uncovered", "a certificate for other names", conditions(webfarmv1.SiteCertificateValid, webfarmv1.ReasonHostnameNotCovered))
	h.createSite(ns, "nosecret", "web", "missing-tls", "new.example.com")
	h.site(ns, "nosecret", "a missing Secret", conditions(webfarmv1.SiteCertificateValid, webfarmv1.ReasonSecretNotFound))
	h.createSite(ns, "nofarm", "gone", "", "lost.example.com")
	h.site(ns, "nofarm", "a missing farm", conditions(webfarmv1.SiteAccepted, webfarmv1.ReasonWebFarmNotFound))

	// A front's agent reports serving the site's generation.
	h.createNode("sites-a", "10.8.0.1", map[string]string{"role": "web"})
	h.front("sites-a", "created", func(*webfarmv1.FrontNode) error { return nil })
	h.patchFrontStatus("sites-a", map[string]any{"sites": []any{map[string]any{"name": ns + "/a-first", "generation": 1, "https": true}}})
	h.site(ns, "a-first", "live on one front", func(st webfarmv1.SiteStatus) error {
		if st.FrontsServing != 1 {
			return fmt.Errorf("frontsServing %d", st.FrontsServing)
		}
		return nil
	})

	// A site with a web server: live where nginx serves its vhost too;
	// a front whose nginx refused it is named with nginx's message.
	web := &webfarmv1.Site{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "static"}}
	web.Spec.WebFarmRef.Name = "web"
	web.Spec.Hostnames = []webfarmv1.Hostname{"static.example.com"}
	web.Spec.WebServer = &webfarmv1.SiteWebServer{Root: "/srv/static"}
	if err := h.c.Create(h.ctx, web); err != nil {
		t.Fatal(err)
	}
	h.site(ns, "static", "no front yet", conditions(webfarmv1.SiteVhostApplied, webfarmv1.ReasonVhostApplied))
	h.createNode("sites-b", "10.8.0.2", map[string]string{"role": "web"})
	h.front("sites-b", "created", func(*webfarmv1.FrontNode) error { return nil })
	const refusal = "nginx -t refused the configuration: could not build server_names_hash, you should increase server_names_hash_bucket_size: 64"
	h.patchFrontStatus("sites-a", map[string]any{"sites": []any{
		map[string]any{"name": ns + "/a-first", "generation": 1, "https": true},
		map[string]any{"name": ns + "/static", "generation": 1, "vhostGeneration": 1},
	}})
	h.patchFrontStatus("sites-b", map[string]any{"sites": []any{map[string]any{"name": ns + "/static", "generation": 1, "vhostRefused": refusal}}})
	st = h.site(ns, "static", "refused on sites-b, live on sites-a", conditions(webfarmv1.SiteVhostApplied, webfarmv1.ReasonVhostRefused), func(st webfarmv1.SiteStatus) error {
		if st.FrontsServing != 1 {
			return fmt.Errorf("frontsServing %d", st.FrontsServing)
		}
		return nil
	})
	if msg := meta.FindStatusCondition(st.Conditions, webfarmv1.SiteVhostApplied).Message; !strings.Contains(msg, "front sites-b: "+refusal) {
		t.Errorf("VhostApplied message %q does not name the front and nginx's message", msg)
	}
	h.patchFrontStatus("sites-b", map[string]any{"sites": []any{map[string]any{"name": ns + "/static", "generation": 1, "vhostGeneration": 1}}})
	h.site(ns, "static", "applied on both once fixed", conditions(webfarmv1.SiteVhostApplied, webfarmv1.ReasonVhostApplied), func(st webfarmv1.SiteStatus) error {
		if st.FrontsServing != 2 {
			return fmt.Errorf("frontsServing %d", st.FrontsServing)
		}
		return nil
	})

	// The established site goes: the newcomer's names are its own now.
	if err := h.c.Delete(h.ctx, &webfarmv1.Site{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a-first"}}); err != nil {
		t.Fatal(err)
	}
	h.site(ns, "b-second", "accepted once the other went", conditions(webfarmv1.SiteAccepted, webfarmv1.ReasonSiteAccepted))
}

// TestEnvtestSiteSecretWatched: with its namespace watched, a change of a
// certificate's Secret reaches the Site's status at once, long before the
// controller would read it again (siteRecheck): an expired renewal, a key
// that does not match, and a good one again.
func TestEnvtestSiteSecretWatched(t *testing.T) {
	const ns = "watched"
	h := startHarnessWatching(t, testr.NewWithOptions(t, testr.Options{Verbosity: 0}), nil, ns)
	if siteRecheck < 10*pollTimeout {
		t.Fatalf("siteRecheck %v is within reach of the test's wait %v: the test would not show the watch", siteRecheck, pollTimeout)
	}
	h.createNamespace(ns)
	h.createFarm(ns, "web", map[string]string{"role": "web"}, "vip")
	h.createFailoverIP(ns, "vip", "192.0.2.70", "", false)
	h.createTLSSecret(ns, "www-tls", time.Hour, "www.example.com")
	h.createSite(ns, "www", "web", "www-tls", "www.example.com")
	h.createSite(ns, "other", "web", "", "other.example.com")
	h.site(ns, "www", "a valid certificate", conditions(webfarmv1.SiteCertificateValid, webfarmv1.ReasonCertificateValid))

	expired, err := testcerts.New(time.Now().Add(-48*time.Hour), time.Now().Add(-time.Minute), "www.example.com")
	if err != nil {
		t.Fatal(err)
	}
	valid, err := testcerts.Valid("www.example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		what     string
		crt, key []byte
		want     string
	}{
		{"rotated to an expired certificate", expired.Cert, expired.Key, webfarmv1.ReasonCertificateExpired},
		{"a key that is not the certificate's", valid.Cert, expired.Key, webfarmv1.ReasonKeyMismatch},
		{"a valid renewal", valid.Cert, valid.Key, webfarmv1.ReasonCertificateValid},
	} {
		h.updateTLSSecret(ns, "www-tls", step.crt, step.key)
		start := time.Now()
		h.site(ns, "www", step.what, conditions(webfarmv1.SiteCertificateValid, step.want))
		t.Logf("%s: in the Site's status %v after the Secret's update", step.what, time.Since(start).Round(time.Millisecond))
	}
	h.site(ns, "other", "a Site without TLS is left alone", conditions(webfarmv1.SiteCertificateValid, webfarmv1.ReasonNoTLS))
}

func (h *harness) updateTLSSecret(ns, name string, crt, key []byte) {
	h.t.Helper()
	s := &corev1.Secret{}
	if err := h.c.Get(h.ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		h.t.Fatal(err)
	}
	s.Data = map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}
	if err := h.c.Update(h.ctx, s); err != nil {
		h.t.Fatalf("updating Secret %s/%s: %v", ns, name, err)
	}
}

func (h *harness) createTLSSecret(ns, name string, validFor time.Duration, hosts ...string) {
	h.t.Helper()
	pair, err := testcerts.New(time.Now().Add(-48*time.Hour), time.Now().Add(validFor), hosts...)
	if err != nil {
		h.t.Fatal(err)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: pair.Cert, corev1.TLSPrivateKeyKey: pair.Key},
	}
	if err := h.c.Create(h.ctx, s); err != nil {
		h.t.Fatalf("creating Secret %s/%s: %v", ns, name, err)
	}
}

func (h *harness) createSite(ns, name, farm, secret string, hosts ...string) {
	h.t.Helper()
	s := &webfarmv1.Site{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	s.Spec.WebFarmRef.Name = farm
	for _, host := range hosts {
		s.Spec.Hostnames = append(s.Spec.Hostnames, webfarmv1.Hostname(host))
	}
	if secret != "" {
		s.Spec.TLS = &webfarmv1.SiteTLS{SecretName: secret}
	}
	if err := h.c.Create(h.ctx, s); err != nil {
		h.t.Fatalf("creating Site %s/%s: %v", ns, name, err)
	}
}

// site waits until every cond holds for the Site's status of its latest
// generation.
func (h *harness) site(ns, name, what string, conds ...func(webfarmv1.SiteStatus) error) webfarmv1.SiteStatus {
	h.t.Helper()
	var s webfarmv1.Site
	eventually(h.t, "Site "+ns+"/"+name+": "+what, func() error {
		if err := h.c.Get(h.ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
			return err
		}
		if s.Status.ObservedGeneration != s.Generation {
			return fmt.Errorf("status of generation %d, spec %d", s.Status.ObservedGeneration, s.Generation)
		}
		for _, c := range conds {
			if err := c(s.Status); err != nil {
				return err
			}
		}
		return nil
	})
	return s.Status
}

// conditions wants, for each pair of arguments, that condition type with
// that reason.
func conditions(typeReason ...string) func(webfarmv1.SiteStatus) error {
	return func(st webfarmv1.SiteStatus) error {
		for i := 0; i+1 < len(typeReason); i += 2 {
			c := meta.FindStatusCondition(st.Conditions, typeReason[i])
			if c == nil || c.Reason != typeReason[i+1] {
				return fmt.Errorf("condition %s is %+v, want reason %s", typeReason[i], c, typeReason[i+1])
			}
		}
		return nil
	}
}

// TestEnvtestFarmConflict: a second farm without Sites on the address and
// port of an established one is Ready=False with reason Conflict, naming
// both; the established one is not; once it goes, the newcomer is served.
func TestEnvtestFarmConflict(t *testing.T) {
	h := startHarness(t)
	ns := "farms"
	h.createNamespace(ns)
	h.createFailoverIP(ns, "vip", "192.0.2.60", "", false)
	h.createFarm(ns, "a-old", map[string]string{"role": "old"}, "vip")
	h.createFarm(ns, "b-new", map[string]string{"role": "new"}, "vip")
	h.farmReady(ns, "b-new", webfarmv1.ReasonConflict, "WebFarm farms/b-new", "WebFarm farms/a-old", "192.0.2.60:80")
	h.farmReady(ns, "a-old", webfarmv1.ReasonNoFrontSelected)
	if err := h.c.Delete(h.ctx, &webfarmv1.WebFarm{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a-old"}}); err != nil {
		t.Fatal(err)
	}
	h.farmReady(ns, "b-new", webfarmv1.ReasonNoFrontSelected)
}

// TestEnvtestFarmConflictEveryAddress: a farm on every address of its
// fronts and a newer one on a failover address, same port, on a shared
// front are one socket on Linux: the newcomer gets the Conflict, naming
// both, and the established farm does not; without the shared front, or
// once the established farm goes, there is none.
func TestEnvtestFarmConflictEveryAddress(t *testing.T) {
	h := startHarness(t)
	ns := "anyaddr"
	h.createNamespace(ns)
	h.createNode("anyaddr-1", "10.9.0.1", map[string]string{"all": "yes", "given": "yes"})
	h.createFailoverIP(ns, "vip", "192.0.2.61", "", false)
	h.createFarm(ns, "a-all", map[string]string{"all": "yes"})
	h.farmReady(ns, "a-all", webfarmv1.ReasonNoFrontReady)
	h.createFarm(ns, "b-given", map[string]string{"given": "yes"}, "vip")
	h.farmReady(ns, "b-given", webfarmv1.ReasonConflict, "WebFarm anyaddr/b-given", "WebFarm anyaddr/a-all", "*@anyaddr-1:80")
	h.farmReady(ns, "a-all", webfarmv1.ReasonNoFrontReady)
	// Another front for the newcomer alone: still the shared one.
	h.createNode("anyaddr-2", "10.9.0.2", map[string]string{"given": "yes"})
	h.farmReady(ns, "b-given", webfarmv1.ReasonConflict)
	if err := h.c.Delete(h.ctx, &webfarmv1.WebFarm{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a-all"}}); err != nil {
		t.Fatal(err)
	}
	h.farmReady(ns, "b-given", webfarmv1.ReasonFailoverIPUnowned)
}

// farmReady waits until the WebFarm's Ready condition has reason, with a
// message holding each of holds.
func (h *harness) farmReady(ns, name, reason string, holds ...string) {
	h.t.Helper()
	eventually(h.t, "WebFarm "+name+" Ready reason "+reason, func() error {
		var wf webfarmv1.WebFarm
		if err := h.c.Get(h.ctx, client.ObjectKey{Namespace: ns, Name: name}, &wf); err != nil {
			return err
		}
		c := meta.FindStatusCondition(wf.Status.Conditions, webfarmv1.ConditionReady)
		if c == nil || c.Reason != reason {
			return fmt.Errorf("Ready %+v", c)
		}
		for _, s := range holds {
			if !strings.Contains(c.Message, s) {
				return fmt.Errorf("Ready message %q lacks %q", c.Message, s)
			}
		}
		return nil
	})
}
