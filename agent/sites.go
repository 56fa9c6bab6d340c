package agent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/webfarm/webfarm/agent/haproxy"
	"github.com/webfarm/webfarm/agent/secretwatch"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/sites"
)

// servedSites decides what of the node's farms and their Sites HAProxy
// serves. Each farm listens on its failover addresses. The newcomer of
// every conflict (two claims of one hostname, or of every hostname, on one
// address and port) is left out, and a site whose certificate cannot be
// loaded is served without HTTPS; problems say which and why, and the
// rest is served.
func (a *Agent) servedSites(ctx context.Context, snap *snapshot, farms []haproxy.Farm) ([]haproxy.Farm, []haproxy.Site, []string) {
	addresses := failoverAddresses(snap)
	var problems []string
	kept := farms[:0:0]
	for _, farm := range farms {
		addrs, err := farmAddresses(snap.farms[farm.Key], addresses, nodeAddress(snap))
		if err != nil {
			problems = append(problems, fmt.Sprintf("farm %s not served: %v", farm.Key, err))
			continue
		}
		farm.Addresses = addrs
		kept = append(kept, farm)
	}
	mine := sitesOf(snap, kept)
	a.watchSecrets(ctx, mine)
	refused := sites.Resolve(sites.Claims(farmsByKey(snap, kept), mine, addresses, nil))
	farms = slices.DeleteFunc(kept, func(f haproxy.Farm) bool {
		c, bad := refused["WebFarm "+f.Key]
		if bad {
			problems = append(problems, fmt.Sprintf("farm %s not served: %s", f.Key, c))
		}
		return bad
	})
	var out []haproxy.Site
	a.proxyState.siteMessages = map[string]string{}
	for _, site := range mine {
		k := key(site)
		if c, bad := refused["Site "+k]; bad {
			problems = append(problems, fmt.Sprintf("site %s not served: %s", k, c))
			continue
		}
		if !slices.ContainsFunc(farms, func(f haproxy.Farm) bool { return f.Key == farmOf(site) }) {
			continue
		}
		s, err := a.proxySite(ctx, site, snap.farms[farmOf(site)])
		if err != nil {
			// Over HTTPS still when the certificate last found valid serves on.
			what := "served without HTTPS"
			if s.TLSPort != 0 {
				what = "certificate refused"
			}
			problems = append(problems, fmt.Sprintf("site %s %s: %v", k, what, err))
			a.proxyState.siteMessages[k] = what + ": " + err.Error()
		}
		out = append(out, s)
	}
	return farms, out, problems
}

// sitesServed records the sites HAProxy now serves, for the web server and
// in the node's report.
func (a *Agent) sitesServed(snap *snapshot, served []haproxy.Site) {
	a.proxyState.sites = a.proxyState.sites[:0]
	for _, s := range served {
		a.proxyState.sites = append(a.proxyState.sites, s.Key)
	}
	statuses := siteStatuses(snap, served, a.proxyState.siteMessages)
	a.vhosts.annotate(statuses)
	a.reporter.update(func(r *report) { r.Sites = statuses })
}

// siteStatuses are what the node reports of the sites HAProxy serves: the
// generation of each, whether over HTTPS, and what went wrong.
func siteStatuses(snap *snapshot, served []haproxy.Site, messages map[string]string) []webfarmv1.NodeSiteStatus {
	out := make([]webfarmv1.NodeSiteStatus, 0, len(served))
	for _, s := range served {
		site := snap.sites[s.Key]
		if site == nil {
			continue
		}
		out = append(out, webfarmv1.NodeSiteStatus{Name: s.Key, Generation: site.Generation, HTTPS: s.TLSPort != 0, Message: messages[s.Key]})
	}
	slices.SortFunc(out, func(a, b webfarmv1.NodeSiteStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// renderableSites keeps the sites of cfg that render with its farms, each
// tried alone, so that one the renderer refuses costs only itself.
func renderableSites(cfg haproxy.Config) ([]haproxy.Site, []string) {
	var kept []haproxy.Site
	var left []string
	for _, s := range cfg.Sites {
		one := cfg
		one.Sites = []haproxy.Site{s}
		if _, err := haproxy.Render(one); err != nil {
			left = append(left, fmt.Sprintf("site %s not served: %v", s.Key, err))
			continue
		}
		kept = append(kept, s)
	}
	return kept, left
}

// proxySite is a Site for the renderer, with its certificate checked now.
// A certificate that fails the check is never loaded: the one last found
// valid serves on while it still passes, or the site is served without
// HTTPS.
func (a *Agent) proxySite(ctx context.Context, site *webfarmv1.Site, farm *webfarmv1.WebFarm) (haproxy.Site, error) {
	hosts := sites.Hostnames(site)
	s := haproxy.Site{Key: key(site), Farm: farmOf(site), Hostnames: hosts}
	if site.Spec.TLS == nil {
		return s, nil
	}
	if sites.TLSPort(site) == sites.FarmPort(farm) {
		return s, fmt.Errorf("spec.tls.port %d is the farm's plain HTTP port", sites.TLSPort(site))
	}
	if a.proxyState.certs == nil {
		a.proxyState.certs = map[string]tlsPair{}
	}
	now := a.clock.Now()
	pair, bundle, err := a.siteCertificate(ctx, site, hosts, now)
	if err != nil {
		last, known := a.proxyState.certs[s.Key]
		lastErr := err
		if known {
			bundle, _, lastErr = last.check(hosts, now)
		}
		if lastErr != nil {
			delete(a.proxyState.certs, s.Key)
			return s, err
		}
		pair, err = last, fmt.Errorf("%w; the certificate last found valid serves on", err)
	}
	s.Certificate = bundle
	a.proxyState.certs[s.Key] = pair
	s.TLSPort = sites.TLSPort(site)
	s.RedirectToHTTPS = site.Spec.RedirectToHTTPS
	if h := site.Spec.HSTS; h != nil {
		s.HSTS = &haproxy.HSTS{MaxAgeSeconds: h.MaxAgeSeconds, IncludeSubDomains: h.IncludeSubDomains, Preload: h.Preload}
	}
	return s, err
}

// tlsPair is the tls.crt and tls.key of a Secret.
type tlsPair struct{ crt, key []byte }

func (p tlsPair) check(hosts []string, now time.Time) ([]byte, tlsPair, error) {
	bundle, err := sites.CheckCertificate(p.crt, p.key, hosts, now)
	return bundle, p, err
}

func (a *Agent) siteCertificate(ctx context.Context, site *webfarmv1.Site, hosts []string, now time.Time) (tlsPair, []byte, error) {
	name := site.Spec.TLS.SecretName
	data, err := a.refs.secret(ctx, site.Namespace, name)
	if err != nil {
		return tlsPair{}, nil, fmt.Errorf("spec.tls.secretName: %w", err)
	}
	bundle, pair, err := tlsPair{crt: data["tls.crt"], key: data["tls.key"]}.check(hosts, now)
	if err != nil {
		return pair, nil, fmt.Errorf("spec.tls.secretName: Secret %s/%s: %w", site.Namespace, name, err)
	}
	return pair, bundle, nil
}

// failoverAddresses maps each FailoverIP, "namespace/name", to its address.
func failoverAddresses(snap *snapshot) map[string]string {
	out := make(map[string]string, len(snap.failoverIPs))
	for k, fip := range snap.failoverIPs {
		out[k] = fip.Spec.Address
	}
	return out
}

// farmAddresses are the addresses HAProxy binds for a farm: none (every
// address) for a farm without failover IPs, and the node's own address
// when the farm asks for it. A farm whose failover IPs do not exist yet
// has nowhere to listen.
func farmAddresses(wf *webfarmv1.WebFarm, addresses map[string]string, node netip.Addr) ([]netip.Addr, error) {
	var out []netip.Addr
	failover := 0
	for _, s := range sites.FarmAddresses(wf, addresses) {
		switch s {
		case sites.AnyAddress:
			return nil, nil
		case sites.NodeAddress:
			if !node.IsValid() {
				return nil, fmt.Errorf("spec.frontend.bindNodeAddress: the node's FrontNode has no address")
			}
			if !slices.Contains(out, node) {
				out = append(out, node)
			}
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("failover address %q: %w", s, err)
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
		failover++
	}
	if failover == 0 {
		return nil, fmt.Errorf("none of its failover IPs %v exists", wf.Spec.FailoverIPs)
	}
	return out, nil
}

// nodeAddress is the node's own address, from its FrontNode; invalid when
// unknown.
func nodeAddress(snap *snapshot) netip.Addr {
	if snap.self == nil {
		return netip.Addr{}
	}
	a, _ := netip.ParseAddr(snap.self.Spec.Address)
	return a.Unmap()
}

// sitesOf returns the Sites of farms, sorted by key.
func sitesOf(snap *snapshot, farms []haproxy.Farm) []*webfarmv1.Site {
	var out []*webfarmv1.Site
	for _, site := range snap.sites {
		if slices.ContainsFunc(farms, func(f haproxy.Farm) bool { return f.Key == farmOf(site) }) {
			out = append(out, site)
		}
	}
	slices.SortFunc(out, func(a, b *webfarmv1.Site) int { return strings.Compare(key(a), key(b)) })
	return out
}

func farmOf(site *webfarmv1.Site) string { return sites.FarmKey(site) }

// farmsByKey are the WebFarms of farms.
func farmsByKey(snap *snapshot, farms []haproxy.Farm) map[string]*webfarmv1.WebFarm {
	out := make(map[string]*webfarmv1.WebFarm, len(farms))
	for _, f := range farms {
		out[f.Key] = snap.farms[f.Key]
	}
	return out
}

// watchSecrets has the agent woken when the Secret of a site's TLS
// changes, when it watches them.
func (a *Agent) watchSecrets(ctx context.Context, mine []*webfarmv1.Site) {
	if a.secrets == nil {
		return
	}
	var names []types.NamespacedName
	for _, site := range mine {
		if site.Spec.TLS != nil {
			names = append(names, types.NamespacedName{Namespace: site.Namespace, Name: site.Spec.TLS.SecretName})
		}
	}
	a.secrets.Want(ctx, names)
}

// newSecretWatch watches Secrets by their metadata alone; a change makes
// the next look-up read the Secret again, and wakes the agent.
func newSecretWatch(mgr manager.Manager, refs *references, wake func()) (*secretwatch.Watch, error) {
	client, err := metadata.NewForConfig(mgr.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("watching Secrets: %w", err)
	}
	return &secretwatch.Watch{Client: client, Changed: func(name types.NamespacedName) {
		refs.forgetSecret(name)
		wake()
	}}, nil
}
