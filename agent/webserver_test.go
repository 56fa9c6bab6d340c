package agent

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/webfarm/webfarm/agent/nginx"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// TestWebServerConfig: a vhost for each served Site that declares a web
// server, on its farm's web port; none for a site left out of HAProxy or
// without a web server.
func TestWebServerConfig(t *testing.T) {
	t0 := time.Now()
	web := farmAt("web", t0)
	web.Spec.HealthCheck.Path = "/healthz"
	snap := testSnapshot("front1", nil, web)
	static := siteAt("static", "web", t0, "", "www.example.com")
	static.Spec.WebServer = &webfarmv1.SiteWebServer{Root: "/srv/www", Index: []string{"index.html"}}
	app := siteAt("app", "web", t0, "", "app.example.com")
	app.Spec.WebServer = &webfarmv1.SiteWebServer{Proxy: &webfarmv1.SiteProxy{Socket: "/run/app.sock"}, ClientMaxBodySize: "10m"}
	refused := siteAt("refused", "web", t0, "", "www.example.com")
	refused.Spec.WebServer = &webfarmv1.SiteWebServer{Root: "/srv/other"}
	own := siteAt("own", "web", t0, "", "own.example.com")
	snap.sites = map[string]*webfarmv1.Site{}
	for _, s := range []*webfarmv1.Site{static, app, refused, own} {
		snap.sites[key(s)] = s
	}
	got := webServerConfig(snap, []string{"shop/app", "shop/own", "shop/static"}, "/var/log/nginx/access.log")
	want := nginx.Config{
		Vhosts: []nginx.Vhost{
			{Key: "shop/app", Port: 5080, Hostnames: []string{"app.example.com"}, ProxySocket: "/run/app.sock", ClientMaxBodySize: "10m"},
			{Key: "shop/static", Port: 5080, Hostnames: []string{"www.example.com"}, Root: "/srv/www", Index: []string{"index.html"}},
		},
		CheckPaths: map[int32]string{5080: "/healthz"},
		AccessLog:  "/var/log/nginx/access.log",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("webServerConfig (-want +got):\n%s", d)
	}
}
