package agent

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/webfarm/webfarm/agent/nginx"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// TestWebServerConfig: a vhost for each served Site that declares a web
// server, on its farm's web port, none serving the uploads' state; none
// for a site left out of HAProxy or without a web server.
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
		Hidden:     []string{".webfarm"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("webServerConfig (-want +got):\n%s", d)
	}
}

// TestNextVhostState: a site whose vhost nginx took serves its current
// generation; a refused one keeps the generation it had (none for a new
// site), with nginx's message; a site gone is forgotten.
func TestNextVhostState(t *testing.T) {
	snap := &snapshot{sites: map[string]*webfarmv1.Site{}}
	for name, gen := range map[string]int64{"taken": 3, "refused": 5, "new": 1} {
		snap.sites["shop/"+name] = &webfarmv1.Site{}
		snap.sites["shop/"+name].Generation = gen
	}
	cfg := nginx.Config{Vhosts: []nginx.Vhost{{Key: "shop/taken"}, {Key: "shop/refused"}, {Key: "shop/new"}, {Key: "shop/unrendered"}}}
	files := map[string][]byte{}
	for _, k := range []string{"shop/taken", "shop/refused", "shop/new"} {
		files[nginx.VhostFile(k)] = nil
	}
	refusal := &nginx.ValidationError{Output: "nginx: [emerg] could not build server_names_hash"}
	out := nginx.Outcome{Refused: map[string]*nginx.ValidationError{
		nginx.VhostFile("shop/refused"): refusal,
		nginx.VhostFile("shop/new"):     refusal,
	}}
	prev := vhostState{served: map[string]int64{"shop/taken": 2, "shop/refused": 4, "shop/gone": 7}}
	got := nextVhostState(prev, snap, cfg, files, out)
	want := vhostState{
		served:  map[string]int64{"shop/taken": 3, "shop/refused": 4},
		refused: map[string]string{"shop/refused": refusal.Error(), "shop/new": refusal.Error()},
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(vhostState{})); d != "" {
		t.Errorf("nextVhostState (-want +got):\n%s", d)
	}
	statuses := []webfarmv1.NodeSiteStatus{{Name: "shop/refused", Generation: 5}, {Name: "shop/other", Generation: 1}}
	got.annotate(statuses)
	if statuses[0].VhostGeneration != 4 || statuses[0].VhostRefused == "" || statuses[1].VhostGeneration != 0 || statuses[1].VhostRefused != "" {
		t.Errorf("annotate: %+v", statuses)
	}
}
