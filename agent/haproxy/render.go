package haproxy

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// Front is one front of a farm, as every HAProxy of the farm sees it.
type Front struct {
	// Name is the front's node name; it names the two HAProxy servers.
	Name string
	// Address is the node's address (FrontNode spec.address).
	Address netip.Addr
	// Cookie is the sticky-cookie value of the front (FrontNode spec.cookie).
	Cookie string
}

// Farm is one WebFarm with everything resolved (secrets, configmaps).
type Farm struct {
	// Key is "namespace/name".
	Key string
	// Spec is the WebFarm's spec. Zero fields take the CRD defaults, so that
	// a spec that did not go through the API server renders the same.
	Spec webfarmv1.WebFarmSpec
	// Fronts are the farm's fronts, sorted by Name (Render sorts a copy too).
	Fronts []Front
	// Addresses are the farm's failover addresses, where HAProxy listens
	// (with freebind, so that a front that does not hold one is ready when
	// it gets it); with none, it listens on every address of the node.
	Addresses []netip.Addr
	// Stats is nil when spec.stats is disabled; User/Password come from the
	// Secret.
	Stats *Credentials
	// ErrorPages maps a status code to the page from the ConfigMap: either an
	// HTML body, to which Render adds the status line and headers (as the CRD
	// documents), or a complete HTTP response starting with "HTTP/1.", whose
	// status and headers are checked and rewritten canonically.
	ErrorPages map[int][]byte
}

// Credentials guard a farm's statistics page (HTTP basic authentication).
type Credentials struct{ User, Password string }

// Config is everything one node's HAProxy serves.
type Config struct {
	Farms []Farm
	// Sites are the websites of the farms, routed by Host (and SNI).
	Sites []Site
	// DefaultCertificate is the PEM bundle an HTTPS frontend presents to a
	// client whose SNI names none of its sites; needed with any TLS site.
	DefaultCertificate []byte
	// RuntimeSocket is the absolute path of the admin stats socket; use
	// Process.RuntimeSocket so that Stats and SetDrain find it (and the
	// server-state file beside it is the one Process.Apply writes).
	RuntimeSocket string
	// IPv4Only binds `0.0.0.0:<port>` only, without `[::]:<port> v6only`,
	// and leaves IPv6 failover addresses out, for nodes whose kernel has
	// IPv6 disabled.
	IPv4Only bool
	// Metrics, when valid, is the node-local address where HAProxy serves
	// its Prometheus exporter at MetricsPath. Its port must be no farm's.
	Metrics netip.AddrPort
	// LogSocket, when set, is the absolute path of the unix datagram socket
	// that HAProxy sends its access log to, one line per request in the
	// httplog format (see agent/accesslog). HAProxy never waits for it: a
	// line that finds the socket full or unbound is dropped.
	LogSocket string
}

// MetricsPath is where the exporter answers on Config.Metrics.
const MetricsPath = "/metrics"

// Global limits that Render writes. They are not part of the API: they bound
// what a misbehaving farm could cost the node.
const (
	// minGlobalMaxConn is the original setup's global maxconn; the global
	// limit grows with the sum of the farms' limits.
	minGlobalMaxConn = 4096
	// hardStopAfter bounds how long an old worker keeps serving its clients
	// after a reload, so that reloads cannot pile up processes forever.
	hardStopAfter = "30m"
	// maxReloads ends a worker that survived that many reloads.
	maxReloads = 50
)

// BackendName is the HAProxy proxy name of a farm: "namespace/name" becomes
// "farm_<namespace>_<name>". Neither part may hold '_', so it is unambiguous.
func BackendName(farmKey string) string {
	return "farm_" + strings.Replace(farmKey, "/", "_", 1)
}

// ServerNames are the names of a front's two servers in every farm: the main
// server, checked on the drain port, and its backup twin, checked on the web
// port.
func ServerNames(front string) (main, backup string) {
	return front, front + "-backup"
}

// ErrorFilePath is where the configuration expects a farm's error page for
// code, relative to the configuration file's directory.
func ErrorFilePath(farmKey string, code int) string {
	return fmt.Sprintf("errors/%s/%d.http", BackendName(farmKey), code)
}

// Render returns the HAProxy configuration for c. It is pure and
// deterministic; an error names the farm or site and the field that cannot
// be used, or the endpoint two of them claim alike.
func Render(c Config) ([]byte, error) {
	pl, err := planConfig(c)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(estimateSize(pl.farms))
	writeGlobal(&b, c, pl)
	writeMetrics(&b, c.Metrics)
	for _, fe := range pl.frontends {
		writeFrontend(&b, fe, c.LogSocket != "")
	}
	for _, p := range pl.farms {
		writeBackend(&b, p)
	}
	if slices.ContainsFunc(pl.frontends, func(fe *frontendPlan) bool { return fe.defaultBackend == noSiteBackend }) {
		writeNoSiteBackend(&b)
	}
	return b.Bytes(), nil
}

// configPlan is a whole Config, checked.
type configPlan struct {
	farms     []farmPlan
	sites     []sitePlan
	frontends []*frontendPlan
}

func planConfig(c Config) (configPlan, error) {
	var pl configPlan
	var err error
	if pl.farms, err = planFarms(c.Farms); err != nil {
		return pl, err
	}
	byKey := make(map[string]*farmPlan, len(pl.farms))
	for i := range pl.farms {
		byKey[pl.farms[i].key] = &pl.farms[i]
	}
	if pl.sites, err = planSites(c.Sites, byKey); err != nil {
		return pl, err
	}
	if pl.frontends, err = planFrontends(pl.farms, pl.sites, c.IPv4Only); err != nil {
		return pl, err
	}
	if slices.ContainsFunc(pl.sites, func(s sitePlan) bool { return s.tlsPort != 0 }) && len(c.DefaultCertificate) == 0 {
		return pl, fmt.Errorf("default certificate: needed by the sites served over TLS")
	}
	if err := checkRuntimeSocket(c.RuntimeSocket); err != nil {
		return pl, err
	}
	return pl, checkObservability(c, pl.frontends)
}

// checkObservability refuses a log socket that cannot be written unquoted,
// and an exporter on a farm's port: HAProxy would bind both (SO_REUSEPORT)
// and share the farm's clients with the exporter.
func checkObservability(c Config, frontends []*frontendPlan) error {
	if c.LogSocket != "" && (!socketPattern.MatchString(c.LogSocket) || strings.Contains(c.LogSocket, "/../")) {
		return fmt.Errorf("log socket %q: must be an absolute path of at most 100 letters, digits, '.', '_', '-' and '/'", c.LogSocket)
	}
	if !c.Metrics.IsValid() {
		return nil
	}
	if a := c.Metrics.Addr(); a.IsUnspecified() || a.IsMulticast() || a.Zone() != "" || c.Metrics.Port() == 0 {
		return fmt.Errorf("metrics address %s: must be a unicast node address without zone, with a port", c.Metrics)
	}
	for _, fe := range frontends {
		if int(fe.endpoint.port) == int(c.Metrics.Port()) {
			return fmt.Errorf("metrics address %s: port already used by farm %s", c.Metrics, fe.farms[0].key)
		}
	}
	return nil
}

// estimateSize is a little more than the rendering of plans usually takes,
// so that the buffer grows once.
func estimateSize(plans []farmPlan) int {
	n := 1024
	for _, p := range plans {
		n += 2048 + 96*len(p.servers)
	}
	return n
}

// ErrorFiles returns the error pages the configuration of c refers to, by
// path relative to the configuration file (see ErrorFilePath), as complete
// HTTP responses. Call it after Render succeeded: a page Render would refuse
// is left out here, and then `haproxy -c` refuses the missing file.
func ErrorFiles(c Config) map[string][]byte {
	files := map[string][]byte{}
	for _, f := range c.Farms {
		for code, page := range f.ErrorPages {
			resp, err := errorResponse(code, page)
			if err != nil {
				continue
			}
			files[ErrorFilePath(f.Key, code)] = resp
		}
	}
	return files
}

// Files returns every file the configuration of c refers to, by path
// relative to the configuration file: the error pages (ErrorFiles), the
// certificates of the sites served over TLS and the default one, and the
// crt-list of each HTTPS frontend. Call it after Render succeeded.
func Files(c Config) map[string][]byte {
	files := ErrorFiles(c)
	pl, err := planConfig(c)
	if err != nil {
		return files
	}
	tls := false
	for _, fe := range pl.frontends {
		if fe.endpoint.tls {
			files[crtListFile(fe)] = crtList(fe)
			tls = true
		}
	}
	if !tls {
		return files
	}
	files[defaultCertFile] = c.DefaultCertificate
	for _, s := range c.Sites {
		if s.TLSPort != 0 {
			files[certFile(s.Key)] = s.Certificate
		}
	}
	return files
}

// planFarms checks every farm and returns their plans sorted by key.
func planFarms(farms []Farm) ([]farmPlan, error) {
	plans := make([]farmPlan, 0, len(farms))
	for _, f := range farms {
		p, err := planFarm(f)
		if err != nil {
			return nil, fmt.Errorf("farm %s: %w", quoteKey(f.Key), err)
		}
		plans = append(plans, p)
	}
	slices.SortFunc(plans, func(a, b farmPlan) int { return strings.Compare(a.key, b.key) })
	for i := 1; i < len(plans); i++ {
		if plans[i-1].key == plans[i].key {
			return nil, fmt.Errorf("farm %s: listed twice", plans[i].key)
		}
	}
	return plans, nil
}

// quoteKey prints a farm key that may not be valid (it is then quoted, so
// that an error message cannot be forged by a key holding newlines).
func quoteKey(key string) string {
	if validFarmKey(key) {
		return key
	}
	return fmt.Sprintf("%q", key)
}
