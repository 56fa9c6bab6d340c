package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/webfarm/webfarm/agent/haproxy"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/metrics"
)

// proxyState is what the agent knows of the HAProxy it runs.
type proxyState struct {
	// farms are the farms of the configuration HAProxy runs, to read its
	// statistics back by backend and server.
	farms []haproxy.Farm
	// drained are the runtime drain states of the servers as the agent
	// knows them, by backend then server: learnt from HAProxy after a
	// reload and on a full sync, then kept as the agent sets them. A
	// server missing from it is set as wanted.
	drained map[string]map[string]bool
	// lastRefs is, per farm key, the farm's stats credentials and error
	// pages as last read in full: used while they cannot be read.
	lastRefs map[string]haproxy.Farm
	// certs is, per Site key, the certificate bundle last found valid:
	// it serves on while a renewed Secret is refused, as long as it is
	// itself still valid.
	certs map[string]tlsPair
	// defaultCert is the node's default certificate, once read or made.
	defaultCert []byte
	// sites are the Sites HAProxy serves, by key, for the web server.
	sites []string
	// siteMessages are, by Site key, what the last sync could not do for
	// a site it serves.
	siteMessages map[string]string
}

// syncProxy renders the configuration of the farms on this node, has HAProxy
// run it, and puts the main servers of draining fronts in the drain state.
// A configuration HAProxy refuses is never loaded: the running one stays and
// the status says why.
func (a *Agent) syncProxy(ctx context.Context, snap *snapshot, full bool) {
	farms, problems := a.proxyFarms(ctx, snap)
	farms, sites, siteProblems := a.servedSites(ctx, snap, farms)
	problems = append(problems, siteProblems...)
	metrics.HAProxyFarms.Set(float64(len(farms)))
	if len(farms) == 0 {
		a.stopProxy(ctx, snap)
		return
	}
	start := a.clock.Now()
	var err error
	cfg := a.proxyConfig(snap, farms)
	cfg.Sites = sites
	if len(sites) > 0 {
		if cfg.DefaultCertificate, err = a.defaultCertificate(); err != nil {
			problems = append(problems, err.Error())
		}
	}
	text, err := haproxy.Render(cfg)
	if err != nil && len(cfg.Sites) > 0 {
		var left []string
		cfg.Sites, left = renderableSites(cfg)
		problems = append(problems, left...)
		text, err = haproxy.Render(cfg)
	}
	if err != nil {
		a.reportProxy(func(p *webfarmv1.ProxyStatus) {
			p.Healthy, p.Message = false, "configuration not rendered: "+err.Error()
		})
		return
	}
	reloaded, err := a.proxy.Apply(ctx, text, haproxy.Files(cfg))
	a.observeApply(snap, start, reloaded, err)
	if err != nil {
		var refused *haproxy.ValidationError
		msg := "HAProxy not updated: " + err.Error()
		if errors.As(err, &refused) {
			msg = "configuration refused by haproxy -c, the previous one stays: " + err.Error()
		}
		logr.FromContextOrDiscard(ctx).Error(err, "Applying the HAProxy configuration")
		a.reportProxy(func(p *webfarmv1.ProxyStatus) { p.Healthy, p.Message = false, msg })
		return
	}
	if reloaded {
		a.deadFronts.Forget()
	}
	a.proxyState.farms = farms
	a.sitesServed(snap, cfg.Sites)
	a.syncDrainStates(ctx, snap, farms, reloaded || full)
	a.reportProxy(func(p *webfarmv1.ProxyStatus) {
		p.ConfigHash = configHash(text)
		if reloaded {
			p.LastReloadTime = &metav1.Time{Time: a.clock.Now()}
		}
		p.Healthy, p.Message = true, strings.Join(problems, "; ")
	})
}

// proxyConfig is what the node's HAProxy serves: the farms, its exporter on
// the node's address unless the agent does not know it yet, and its access
// log when the agent relays it.
func (a *Agent) proxyConfig(snap *snapshot, farms []haproxy.Farm) haproxy.Config {
	cfg := haproxy.Config{Farms: farms, RuntimeSocket: a.proxy.RuntimeSocket()}
	if a.accessLog != nil {
		cfg.LogSocket = a.proxy.LogSocket()
	}
	var node netip.Addr
	if snap.self != nil {
		node, _ = netip.ParseAddr(snap.self.Spec.Address)
	}
	if addr, err := a.opts.haproxyMetrics(node); err == nil && addr.Addr().IsValid() {
		cfg.Metrics = addr
	}
	return cfg
}

// observeApply counts and times a sync of HAProxy, and records a refused
// configuration as an event on the node's FrontNode, once per refusal.
func (a *Agent) observeApply(snap *snapshot, start time.Time, reloaded bool, err error) {
	var refused *haproxy.ValidationError
	outcome := metrics.OutcomeUnchanged
	switch {
	case errors.As(err, &refused):
		outcome = metrics.OutcomeRefused
		metrics.HAProxyRefused.Inc()
		a.obs.warn(snap.self, EventConfigurationRefused, "HAProxy keeps its previous configuration: "+err.Error())
	case err != nil:
		outcome = metrics.OutcomeFailed
	case reloaded:
		outcome = metrics.OutcomeReloaded
		metrics.HAProxyReloads.Inc()
	}
	if !errors.As(err, &refused) {
		a.obs.clear(EventConfigurationRefused)
	}
	metrics.HAProxySyncDuration.WithLabelValues(outcome).Observe(a.clock.Since(start).Seconds())
}

// stopProxy stops HAProxy on a node that is no longer a front of any farm.
// Before the agent has seen its FrontNode it changes nothing.
func (a *Agent) stopProxy(ctx context.Context, snap *snapshot) {
	if snap.self == nil || !a.proxy.Running(ctx) {
		return
	}
	if err := a.proxy.Stop(ctx); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Stopping HAProxy")
		return
	}
	a.proxyState.farms, a.proxyState.sites = nil, nil
	a.reporter.update(func(r *report) { r.Sites = nil })
	a.reportProxy(func(p *webfarmv1.ProxyStatus) { *p = webfarmv1.ProxyStatus{Message: "no farm selects this node"} })
}

func (a *Agent) reportProxy(edit func(*webfarmv1.ProxyStatus)) {
	a.reporter.update(func(r *report) { edit(&r.Proxy) })
}

// proxyFarms resolves the farms of this node for the renderer. A farm whose
// Secret or ConfigMap cannot be read keeps the credentials and error pages
// last read — a deleted Secret must not take a site down — and one never read
// is left out rather than served without them; the status says which.
func (a *Agent) proxyFarms(ctx context.Context, snap *snapshot) ([]haproxy.Farm, []string) {
	if a.proxyState.lastRefs == nil {
		a.proxyState.lastRefs = map[string]haproxy.Farm{}
	}
	var farms []haproxy.Farm
	var problems []string
	for _, key := range snap.farmKeys() {
		farm, err := a.proxyFarm(snap, key)
		if err != nil {
			problems = append(problems, fmt.Sprintf("farm %s not served: %v", key, err))
			continue
		}
		if err := a.readReferences(ctx, snap.farms[key], &farm); err != nil {
			last, ok := a.proxyState.lastRefs[key]
			if !ok {
				problems = append(problems, fmt.Sprintf("farm %s not served: %v", key, err))
				continue
			}
			problems = append(problems, fmt.Sprintf("farm %s keeps what it last read: %v", key, err))
			farm.Stats, farm.ErrorPages = last.Stats, last.ErrorPages
		} else {
			a.proxyState.lastRefs[key] = farm
		}
		farms = append(farms, farm)
	}
	return farms, problems
}

// proxyFarm is a farm with its fronts, without what its references hold.
func (a *Agent) proxyFarm(snap *snapshot, key string) (haproxy.Farm, error) {
	wf := snap.farms[key]
	farm := haproxy.Farm{Key: key, Spec: wf.Spec}
	for _, front := range snap.frontsOf(key) {
		addr, err := netip.ParseAddr(front.Spec.Address)
		if err != nil {
			return farm, fmt.Errorf("front %s: spec.address %q: %w", front.Name, front.Spec.Address, err)
		}
		farm.Fronts = append(farm.Fronts, haproxy.Front{
			Name: front.Name, Address: addr, Cookie: front.Spec.Cookie,
		})
	}
	return farm, nil
}

// readReferences fills in the farm's stats credentials and error pages.
func (a *Agent) readReferences(ctx context.Context, wf *webfarmv1.WebFarm, farm *haproxy.Farm) error {
	stats, err := a.statsCredentials(ctx, wf)
	if err != nil {
		return err
	}
	pages, err := a.errorPages(ctx, wf)
	if err != nil {
		return err
	}
	farm.Stats, farm.ErrorPages = stats, pages
	return nil
}

func (a *Agent) statsCredentials(ctx context.Context, wf *webfarmv1.WebFarm) (*haproxy.Credentials, error) {
	stats := wf.Spec.Stats
	if stats == nil || !stats.Enabled || stats.CredentialsSecretRef == nil {
		return nil, nil
	}
	data, err := a.refs.secret(ctx, wf.Namespace, stats.CredentialsSecretRef.Name)
	if err != nil {
		return nil, fmt.Errorf("spec.stats.credentialsSecretRef: %w", err)
	}
	user, password := string(data["username"]), string(data["password"])
	if user == "" || password == "" {
		return nil, fmt.Errorf("spec.stats.credentialsSecretRef: Secret %s/%s needs the keys username and password",
			wf.Namespace, stats.CredentialsSecretRef.Name)
	}
	return &haproxy.Credentials{User: user, Password: password}, nil
}

func (a *Agent) errorPages(ctx context.Context, wf *webfarmv1.WebFarm) (map[int][]byte, error) {
	ref := wf.Spec.ErrorPages
	if ref == nil || ref.ConfigMapRef.Name == "" {
		return nil, nil
	}
	data, err := a.refs.configMap(ctx, wf.Namespace, ref.ConfigMapRef.Name)
	if err != nil {
		return nil, fmt.Errorf("spec.errorPages.configMapRef: %w", err)
	}
	pages, err := errorPages(data)
	if err != nil {
		return nil, fmt.Errorf("spec.errorPages.configMapRef: ConfigMap %s/%s: %w", wf.Namespace, ref.ConfigMapRef.Name, err)
	}
	return pages, nil
}

// syncDrainStates puts the main server of every draining front in HAProxy's
// drain state, so that new clients stop landing on it at once rather than
// after the health check's fall time, and takes undrained ones out of it.
// Draining is not in the configuration: a drain reloads no HAProxy.
//
// It sends only what differs from what it knows of HAProxy's states. After
// a reload, or on a full sync (relearn), it learns them again from HAProxy:
// a reload carries the drain states over, so a front undrained in the pass
// that reloaded, or in a full one, would otherwise look ready while HAProxy
// keeps it drained, and stay drained for good.
func (a *Agent) syncDrainStates(ctx context.Context, snap *snapshot, farms []haproxy.Farm, relearn bool) {
	if relearn || a.proxyState.drained == nil {
		a.proxyState.drained = a.learnDrainStates(ctx)
	}
	for _, farm := range farms {
		backend := haproxy.BackendName(farm.Key)
		set := a.proxyState.drained[backend]
		if set == nil {
			set = map[string]bool{}
			a.proxyState.drained[backend] = set
		}
		for _, front := range farm.Fronts {
			server, _ := haproxy.ServerNames(front.Name)
			draining := snap.fronts[front.Name].Spec.DrainRequested
			if known, ok := set[server]; ok && known == draining {
				continue
			}
			if err := a.proxy.SetDrain(ctx, backend, server, draining); err != nil {
				logr.FromContextOrDiscard(ctx).Error(err, "Setting the drain state", "backend", backend, "server", server)
				continue
			}
			set[server] = draining
		}
	}
}

// learnDrainStates reads the runtime drain states from HAProxy. When it
// cannot, it knows none, and every server is set as wanted.
func (a *Agent) learnDrainStates(ctx context.Context) map[string]map[string]bool {
	states, err := a.proxy.DrainStates(ctx)
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Reading the drain states; setting every server's")
		return map[string]map[string]bool{}
	}
	return states
}

// readStats reports the state and sessions of every server of the running
// HAProxy.
func (a *Agent) readStats(ctx context.Context) {
	if len(a.proxyState.farms) == 0 {
		metrics.HAProxyUp.Set(0)
		a.reporter.update(func(r *report) { r.Servers = nil })
		return
	}
	stats, err := a.proxy.Stats(ctx)
	metrics.HAProxyUp.Set(boolGauge(err == nil))
	if err != nil {
		a.reportProxy(func(p *webfarmv1.ProxyStatus) { p.Healthy, p.Message = false, "runtime API: "+err.Error() })
		return
	}
	servers := serverStatuses(a.proxyState.farms, stats, a.draining)
	a.reporter.update(func(r *report) { r.Servers = servers })
}

// draining tells whether HAProxy's servers for front in farm's backend are
// set to drain.
func (a *Agent) draining(farm, front string) bool {
	main, _ := haproxy.ServerNames(front)
	return a.proxyState.drained[haproxy.BackendName(farm)][main]
}

// serverStatuses maps HAProxy's statistics back to farms and fronts. It
// counts sessions only on the servers of draining fronts, where the drain's
// end depends on them: steady traffic then changes no report, and costs no
// API write.
func serverStatuses(farms []haproxy.Farm, stats []haproxy.ServerStat, draining func(farm, front string) bool) []webfarmv1.ServerStatus {
	type server struct {
		farm, front string
		role        webfarmv1.ServerRole
	}
	known := map[[2]string]server{}
	for _, farm := range farms {
		backend := haproxy.BackendName(farm.Key)
		for _, front := range farm.Fronts {
			main, backup := haproxy.ServerNames(front.Name)
			known[[2]string{backend, main}] = server{farm.Key, front.Name, webfarmv1.ServerMain}
			known[[2]string{backend, backup}] = server{farm.Key, front.Name, webfarmv1.ServerBackup}
		}
	}
	var out []webfarmv1.ServerStatus
	for _, st := range stats {
		s, ok := known[[2]string{st.Backend, st.Server}]
		if !ok {
			continue
		}
		server := webfarmv1.ServerStatus{Farm: s.farm, Front: s.front, Role: s.role, State: settledState(st.Status)}
		if draining(s.farm, s.front) {
			server.Sessions = ptr.To(int32(st.Sessions))
		}
		out = append(out, server)
	}
	return out
}

// settledState is a server's state without the check counter HAProxy adds
// while a server rises or falls ("UP 1/3" is still UP, "DOWN 2/2" still
// DOWN): a check that fails once on a loaded node must not change the
// report, nor cost an API write.
func settledState(status string) string {
	state, counter, ok := strings.Cut(status, " ")
	if !ok || !isCheckCounter(counter) {
		return status
	}
	return state
}

// isCheckCounter tells whether s reads "n/m".
func isCheckCounter(s string) bool {
	n, m, ok := strings.Cut(s, "/")
	return ok && isDigits(n) && isDigits(m)
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// configHash names a configuration in the status: short, and the same on
// every front that runs the same farms.
func configHash(cfg []byte) string {
	sum := sha256.Sum256(cfg)
	return hex.EncodeToString(sum[:8])
}
