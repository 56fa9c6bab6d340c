package agent

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/go-logr/logr"

	"github.com/webfarm/webfarm/agent/nginx"
	"github.com/webfarm/webfarm/agent/uploads"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/sites"
)

// EventVhostRefused: nginx -t refused the Sites' vhosts; nginx keeps the
// previous ones.
const EventVhostRefused = "VhostRefused"

// vhostState is what nginx serves of each Site, by key: the generation of
// the vhost in place, and nginx's message when it refused a newer one.
type vhostState struct {
	served  map[string]int64
	refused map[string]string
}

// syncWebServer keeps nginx's vhosts of the Sites HAProxy serves here, when
// the agent manages nginx. A vhost nginx refuses is never loaded: the
// site's previous vhost stays, the others are applied, and the node's
// report names the site with nginx's words (the FrontNode also gets a
// Warning event).
func (a *Agent) syncWebServer(ctx context.Context, snap *snapshot) {
	if a.nginx == nil || snap.self == nil {
		return
	}
	log := logr.FromContextOrDiscard(ctx)
	cfg := webServerConfig(snap, a.proxyState.sites, a.opts.NginxAccessLog)
	files, errs := nginx.Render(cfg)
	for _, err := range errs {
		log.Error(err, "Leaving a vhost out")
	}
	if files == nil {
		return
	}
	out, err := a.nginx.ApplyEach(ctx, files)
	if err != nil {
		a.obs.warn(snap.self, EventVhostRefused, "nginx keeps its previous vhosts: "+err.Error())
		log.Error(err, "Applying the nginx vhosts")
		return
	}
	a.vhosts = nextVhostState(a.vhosts, snap, cfg, files, out)
	if len(out.Refused) == 0 {
		a.obs.clear(EventVhostRefused)
	} else {
		a.obs.warn(snap.self, EventVhostRefused, refusedNote(out.Refused))
	}
	a.reporter.update(func(r *report) { a.vhosts.annotate(r.Sites) })
}

// nextVhostState follows an ApplyEach of files, rendered from cfg: a site
// whose vhost nginx took serves its current generation, a refused one
// keeps the generation it had.
func nextVhostState(prev vhostState, snap *snapshot, cfg nginx.Config, files map[string][]byte, out nginx.Outcome) vhostState {
	next := vhostState{served: map[string]int64{}, refused: map[string]string{}}
	for _, v := range cfg.Vhosts {
		file := nginx.VhostFile(v.Key)
		if _, rendered := files[file]; !rendered {
			continue
		}
		if refused := out.Refused[file]; refused != nil {
			next.refused[v.Key] = refused.Error()
			if g, ok := prev.served[v.Key]; ok {
				next.served[v.Key] = g
			}
			continue
		}
		next.served[v.Key] = snap.sites[v.Key].Generation
	}
	return next
}

// refusedNote is one event for every refused file, in name order, so that
// an unchanged refusal is not recorded again.
func refusedNote(refused map[string]*nginx.ValidationError) string {
	var notes []string
	for _, name := range slices.Sorted(maps.Keys(refused)) {
		notes = append(notes, name+": "+refused[name].Error())
	}
	return "nginx keeps the previous version of " + strings.Join(notes, "; ")
}

// annotate adds to each site of a node's report what nginx serves of it.
func (s vhostState) annotate(sites []webfarmv1.NodeSiteStatus) {
	for i := range sites {
		sites[i].VhostGeneration = s.served[sites[i].Name]
		sites[i].VhostRefused = s.refused[sites[i].Name]
	}
}

// webServerConfig is a vhost for each served Site that declares a web
// server, on its farm's web port, none serving the uploads' state.
func webServerConfig(snap *snapshot, served []string, accessLog string) nginx.Config {
	c := nginx.Config{CheckPaths: map[int32]string{}, AccessLog: accessLog, Hidden: []string{uploads.MetaDir}}
	for _, k := range served {
		site := snap.sites[k]
		if site == nil || site.Spec.WebServer == nil {
			continue
		}
		farm := snap.farms[sites.FarmKey(site)]
		if farm == nil {
			continue
		}
		port := orDefault(farm.Spec.Backend.WebPort, 5080)
		c.CheckPaths[port] = orDefault(farm.Spec.HealthCheck.Path, "/check.txt")
		c.Vhosts = append(c.Vhosts, vhost(site, port))
	}
	return c
}

func vhost(site *webfarmv1.Site, port int32) nginx.Vhost {
	ws := site.Spec.WebServer
	v := nginx.Vhost{
		Key: key(site), Port: port, Hostnames: sites.Hostnames(site),
		Root: ws.Root, Index: ws.Index, ClientMaxBodySize: ws.ClientMaxBodySize,
	}
	if ws.Proxy != nil {
		v.ProxyPort, v.ProxySocket = ws.Proxy.Port, ws.Proxy.Socket
	}
	return v
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
