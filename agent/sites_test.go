package agent

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/webfarm/webfarm/agent/haproxy"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/testcerts"
)

// TestServedSites: the newcomer of each conflict and a bad certificate
// are left out, each said in the problems, and everything else is
// served: the farms on their failover address, the good site over HTTPS.
func TestServedSites(t *testing.T) {
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour)
	good := tlsSecret(t, "www-tls", time.Hour, "www.example.com")
	expired := tlsSecret(t, "old-tls", -time.Minute, "old.example.com")
	api := fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(good, expired).Build()
	a := &Agent{refs: newReferences(api), clock: clock.RealClock{}}

	web, all, late := farmAt("web", t0), farmAt("all", t0), farmAt("late", t0.Add(time.Minute))
	snap := testSnapshot("front1", []*webfarmv1.FrontNode{front("front1", "10.0.0.11", false, "shop/web", "shop/all", "shop/late")}, web, all, late)
	snap.failoverIPs = map[string]*webfarmv1.FailoverIP{
		"shop/vip": {ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "vip"}, Spec: webfarmv1.FailoverIPSpec{Address: "10.0.0.100"}},
	}
	snap.sites = map[string]*webfarmv1.Site{}
	for _, s := range []*webfarmv1.Site{
		siteAt("www", "web", t0, "www-tls", "www.example.com"),
		siteAt("old", "web", t0, "old-tls", "old.example.com"),
		siteAt("copy", "web", t0.Add(time.Minute), "", "www.example.com"),
		func() *webfarmv1.Site {
			s := siteAt("onhttp", "web", t0.Add(-time.Minute), "www-tls", "on.example.com")
			s.Spec.TLS.Port = 80
			return s
		}(),
	} {
		snap.sites[key(s)] = s
	}
	farms, problems := a.proxyFarms(ctx, snap)
	if len(problems) > 0 {
		t.Fatal(problems)
	}

	farms, sites, problems := a.servedSites(ctx, snap, farms)
	if got := farmKeysOf(farms); !slices.Equal(got, []string{"shop/all", "shop/web"}) {
		t.Errorf("farms served: %v, want shop/all and shop/web", got)
	}
	for _, f := range farms {
		if !slices.Equal(f.Addresses, []netip.Addr{netip.MustParseAddr("10.0.0.100")}) {
			t.Errorf("farm %s listens on %v, want its failover address", f.Key, f.Addresses)
		}
	}
	byKey := map[string]haproxy.Site{}
	for _, s := range sites {
		byKey[s.Key] = s
	}
	if s := byKey["shop/www"]; s.TLSPort != 443 || !strings.Contains(string(s.Certificate), "PRIVATE KEY") {
		t.Errorf("shop/www: TLS port %d, certificate of %d bytes; want HTTPS on 443", s.TLSPort, len(s.Certificate))
	}
	if s, ok := byKey["shop/old"]; !ok || s.TLSPort != 0 || s.Certificate != nil {
		t.Errorf("shop/old (expired certificate): %+v, want served without HTTPS", s)
	}
	if s := byKey["shop/onhttp"]; s.TLSPort != 0 {
		t.Errorf("shop/onhttp, HTTPS on the plain port, is served over TLS on %d", s.TLSPort)
	}
	if _, ok := byKey["shop/copy"]; ok {
		t.Error("shop/copy, a newcomer claiming www.example.com, is served")
	}
	for _, want := range []string{
		"farm shop/late not served: WebFarm shop/all already serves 10.0.0.100:80",
		"site shop/copy not served: Site shop/www already serves www.example.com on 10.0.0.100:80",
		"site shop/old served without HTTPS: spec.tls.secretName: Secret shop/old-tls: the certificate expired",
		"site shop/onhttp served without HTTPS: spec.tls.port 80 is the farm's plain HTTP port",
	} {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, want) }) {
			t.Errorf("problems %q lack %q", problems, want)
		}
	}

	// A renewal that does not cover the site is refused: the certificate
	// last found valid serves on, and the status says so.
	wrong := tlsSecret(t, "www-tls", time.Hour, "other.example.com")
	if err := api.Update(ctx, wrong); err != nil {
		t.Fatal(err)
	}
	a.refs.forget()
	_, again, problems := a.servedSites(ctx, snap, farms)
	i := slices.IndexFunc(again, func(s haproxy.Site) bool { return s.Key == "shop/www" })
	if i < 0 || string(again[i].Certificate) != string(byKey["shop/www"].Certificate) {
		t.Error("a refused renewal replaced the certificate last found valid")
	}
	if !slices.ContainsFunc(problems, func(p string) bool {
		return strings.HasPrefix(p, "site shop/www certificate refused: ") &&
			strings.Contains(p, "does not cover www.example.com") && strings.Contains(p, "last found valid serves on")
	}) {
		t.Errorf("problems %q do not tell the refused renewal", problems)
	}
	if msg := a.proxyState.siteMessages["shop/www"]; !strings.HasPrefix(msg, "certificate refused: ") {
		t.Errorf("the site's message %q: want the refusal, without saying it is served without HTTPS", msg)
	}
}

func farmAt(name string, created time.Time) *webfarmv1.WebFarm {
	wf := farm("shop", name, 5080, 5081)
	wf.CreationTimestamp = metav1.NewTime(created)
	wf.Spec.FailoverIPs = []string{"vip"}
	return wf
}

func siteAt(name, farm string, created time.Time, secret string, hosts ...string) *webfarmv1.Site {
	s := &webfarmv1.Site{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, CreationTimestamp: metav1.NewTime(created)}}
	s.Spec.WebFarmRef.Name = farm
	for _, h := range hosts {
		s.Spec.Hostnames = append(s.Spec.Hostnames, webfarmv1.Hostname(h))
	}
	if secret != "" {
		s.Spec.TLS = &webfarmv1.SiteTLS{SecretName: secret}
	}
	return s
}

// tlsSecret is a kubernetes.io/tls Secret whose certificate ends validFor
// from now (negative: expired).
func tlsSecret(t *testing.T, name string, validFor time.Duration, hosts ...string) *corev1.Secret {
	t.Helper()
	pair, err := testcerts.New(time.Now().Add(-48*time.Hour), time.Now().Add(validFor), hosts...)
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": pair.Cert, "tls.key": pair.Key},
	}
}

func farmKeysOf(farms []haproxy.Farm) []string {
	out := make([]string, len(farms))
	for i, f := range farms {
		out[i] = f.Key
	}
	return out
}

// TestRenderableSites: a site the renderer refuses is left out alone.
func TestRenderableSites(t *testing.T) {
	cfg := haproxy.Config{
		Farms:         []haproxy.Farm{{Key: "shop/web"}},
		RuntimeSocket: "/run/webfarm/haproxy/runtime.sock",
		Sites: []haproxy.Site{
			{Key: "shop/good", Farm: "shop/web", Hostnames: []string{"www.example.com"}},
			{Key: "shop/orphan", Farm: "shop/gone", Hostnames: []string{"x.example.com"}},
		},
	}
	kept, left := renderableSites(cfg)
	if len(kept) != 1 || kept[0].Key != "shop/good" || len(left) != 1 || !strings.Contains(left[0], "site shop/orphan not served") {
		t.Errorf("kept %+v, left %q; want shop/good kept and shop/orphan said left out", kept, left)
	}
}

// noSiteKind is a cluster whose CRDs predate Sites.
type noSiteKind struct{ client.Reader }

func (r noSiteKind) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if _, ok := list.(*webfarmv1.SiteList); ok {
		return &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "webfarm.io", Kind: "Site"}, SearchedVersions: []string{"v1alpha1"}}
	}
	return r.Reader.List(ctx, list, opts...)
}

// TestSnapshotWithoutSiteKind: without the Site CRD the agent still reads
// its farms, and serves them as before.
func TestSnapshotWithoutSiteKind(t *testing.T) {
	s := runtime.NewScheme()
	if err := webfarmv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	wf := farm("shop", "web", 5080, 5081)
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(wf, front("front1", "10.0.0.11", false, "shop/web")).Build()
	snap, err := readSnapshot(context.Background(), noSiteKind{c}, "front1")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.sites) != 0 || snap.farms["shop/web"] == nil || snap.self == nil {
		t.Errorf("snapshot without Sites: farms %v, self %v, sites %v", snap.farms, snap.self, snap.sites)
	}
}

func TestSiteStatuses(t *testing.T) {
	t0 := time.Now()
	www, shop := siteAt("www", "web", t0, "www-tls", "www.example.com"), siteAt("shop", "web", t0, "", "shop.example.com")
	www.Generation, shop.Generation = 3, 1
	snap := testSnapshot("front1", nil)
	snap.sites = map[string]*webfarmv1.Site{"shop/www": www, "shop/shop": shop}
	got := siteStatuses(snap, []haproxy.Site{{Key: "shop/www", TLSPort: 443}, {Key: "shop/shop"}, {Key: "shop/deleted"}},
		map[string]string{"shop/shop": "served without HTTPS: no certificate"})
	want := []webfarmv1.NodeSiteStatus{
		{Name: "shop/shop", Generation: 1, Message: "served without HTTPS: no certificate"},
		{Name: "shop/www", Generation: 3, HTTPS: true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("siteStatuses = %+v, want %+v", got, want)
	}
}

// TestFarmAddresses: what HAProxy binds for a farm — every address without
// failover IPs, its failover addresses, and the node's own when asked.
func TestFarmAddresses(t *testing.T) {
	addresses := map[string]string{"shop/vip": "192.0.2.10", "shop/vip2": "192.0.2.11"}
	node := netip.MustParseAddr("198.51.100.7")
	farm := func(bindNode bool, fips ...string) *webfarmv1.WebFarm {
		wf := &webfarmv1.WebFarm{}
		wf.Namespace, wf.Spec.FailoverIPs, wf.Spec.Frontend.BindNodeAddress = "shop", fips, bindNode
		return wf
	}
	for _, tc := range []struct {
		name    string
		farm    *webfarmv1.WebFarm
		node    netip.Addr
		want    []string
		wantErr string
	}{
		{"no failover IPs: every address", farm(true), node, nil, ""},
		{"failover addresses", farm(false, "vip2", "vip"), node, []string{"192.0.2.10", "192.0.2.11"}, ""},
		{"and the node's", farm(true, "vip"), node, []string{"192.0.2.10", "198.51.100.7"}, ""},
		{"the node's is a failover address", farm(true, "vip"), netip.MustParseAddr("192.0.2.10"), []string{"192.0.2.10"}, ""},
		{"node address unknown", farm(true, "vip"), netip.Addr{}, nil, "bindNodeAddress"},
		{"no failover IP exists yet", farm(true, "gone"), node, nil, "none of its failover IPs"},
	} {
		got, err := farmAddresses(tc.farm, addresses, tc.node)
		var gotS []string
		for _, a := range got {
			gotS = append(gotS, a.String())
		}
		if !slices.Equal(gotS, tc.want) || (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: %v, %v; want %v, error holding %q", tc.name, gotS, err, tc.want, tc.wantErr)
		}
	}
}
