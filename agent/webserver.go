package agent

import (
	"context"
	"errors"

	"github.com/go-logr/logr"

	"github.com/webfarm/webfarm/agent/nginx"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/sites"
)

// EventVhostRefused: nginx -t refused the Sites' vhosts; nginx keeps the
// previous ones.
const EventVhostRefused = "VhostRefused"

// syncWebServer keeps nginx's vhosts of the Sites HAProxy serves here, when
// the agent manages nginx. A refused set is never loaded: nginx keeps the
// previous one, and the FrontNode gets a Warning event with nginx's words.
func (a *Agent) syncWebServer(ctx context.Context, snap *snapshot) {
	if a.nginx == nil || snap.self == nil {
		return
	}
	log := logr.FromContextOrDiscard(ctx)
	files, errs := nginx.Render(webServerConfig(snap, a.proxyState.sites, a.opts.NginxAccessLog))
	for _, err := range errs {
		log.Error(err, "Leaving a vhost out")
	}
	if files == nil {
		return
	}
	_, err := a.nginx.Apply(ctx, files)
	var refused *nginx.ValidationError
	switch {
	case errors.As(err, &refused):
		a.obs.warn(snap.self, EventVhostRefused, "nginx keeps its previous vhosts: "+err.Error())
		log.Error(err, "Applying the nginx vhosts")
	case err != nil:
		log.Error(err, "Applying the nginx vhosts")
	default:
		a.obs.clear(EventVhostRefused)
	}
}

// webServerConfig is a vhost for each served Site that declares a web
// server, on its farm's web port.
func webServerConfig(snap *snapshot, served []string, accessLog string) nginx.Config {
	c := nginx.Config{CheckPaths: map[int32]string{}, AccessLog: accessLog}
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
