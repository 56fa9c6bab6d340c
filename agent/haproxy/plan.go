package haproxy

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// farmPlan is a farm whose every field has been checked: each string in it
// is safe to write into the configuration as it is.
type farmPlan struct {
	key, name                  string
	addrs                      []string // failover addresses, or anyAddress
	port, maxConn              int32
	balance                    webfarmv1.BalanceAlgorithm
	cookieName                 string
	forwardFor, redispatch     bool
	retries                    int32
	retryNotFound              bool // a GET answered 404 is retried elsewhere
	checkMethod, checkPath     string
	interMs, fastInterMs       int64
	checkTimeoutMs             int64
	rise, fall                 int32
	observe                    string // HAProxy's keyword; empty for none
	errorLimit                 int32
	connectMs, clientMs, srvMs int64
	webPort, drainPort         int32
	statsURI, statsAuth        string // statsAuth is quoted; empty without stats
	errorCodes                 []int
	servers                    []serverPlan
}

// serverPlan is one HAProxy server line.
type serverPlan struct {
	name, address, cookie string
	checkPort             int32 // 0: the traffic port
	backup                bool
}

// Patterns of the strings that reach the configuration unquoted. They are
// the CRD's own patterns (or stricter), checked again because a Farm may
// come from anywhere.
var (
	tokenPattern   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	uriPathPattern = regexp.MustCompile(`^/[A-Za-z0-9._~!&()*+,;=:@%/?-]*$`)
	socketPattern  = regexp.MustCompile(`^/[A-Za-z0-9._/-]{1,99}$`)
)

// Length limits: the CRD's, and for credentials a bound of our own.
const (
	maxCheckPathLen  = 1024
	maxStatsURILen   = 256
	maxCredentialLen = 256
)

// planFarm checks f and fills in the CRD defaults of its zero fields.
func planFarm(f Farm) (farmPlan, error) {
	if !validFarmKey(f.Key) {
		return farmPlan{}, fmt.Errorf("key: must be <namespace>/<name> of DNS names")
	}
	p := farmPlan{key: f.Key, name: BackendName(f.Key)}
	steps := []func(*farmPlan, Farm) error{
		planFrontend, planAddresses, planBackend, planHealthCheck, planTimeouts, planStats, planErrorPages, planServers,
	}
	for _, step := range steps {
		if err := step(&p, f); err != nil {
			return farmPlan{}, err
		}
	}
	return p, nil
}

func planFrontend(p *farmPlan, f Farm) error {
	fe := f.Spec.Frontend
	p.port = orDefault(fe.Port, 80)
	p.maxConn = orDefault(fe.MaxConn, 2000)
	if err := inRange("spec.frontend.port", p.port, 1, 65535); err != nil {
		return err
	}
	return inRange("spec.frontend.maxConn", p.maxConn, 1, 1000000)
}

// planAddresses: the farm's failover addresses, sorted, or every address
// of the node for a farm without any.
func planAddresses(p *farmPlan, f Farm) error {
	if len(f.Addresses) == 0 {
		p.addrs = []string{anyAddress}
		return nil
	}
	for i, a := range f.Addresses {
		if err := checkAddress(fmt.Sprintf("addresses[%d]", i), a); err != nil {
			return err
		}
		if s := a.String(); !slices.Contains(p.addrs, s) {
			p.addrs = append(p.addrs, s)
		}
	}
	slices.Sort(p.addrs)
	return nil
}

func planBackend(p *farmPlan, f Farm) error {
	be := f.Spec.Backend
	p.webPort = orDefault(be.WebPort, 5080)
	p.drainPort = orDefault(be.DrainPort, 5081)
	if err := inRange("spec.backend.webPort", p.webPort, 1, 65535); err != nil {
		return err
	}
	if err := inRange("spec.backend.drainPort", p.drainPort, 1, 65535); err != nil {
		return err
	}
	if p.webPort == p.drainPort {
		return fmt.Errorf("spec.backend.drainPort %d: must differ from webPort", p.drainPort)
	}
	p.balance = orDefault(be.Balance, webfarmv1.BalanceRoundRobin)
	switch p.balance {
	case webfarmv1.BalanceRoundRobin, webfarmv1.BalanceLeastConn, webfarmv1.BalanceSource:
	default:
		return fmt.Errorf("spec.backend.balance %q: must be roundrobin, leastconn or source", p.balance)
	}
	p.cookieName = orDefault(be.Cookie.Name, "SERVERID")
	if !tokenPattern.MatchString(p.cookieName) {
		return fmt.Errorf("spec.backend.cookie.name %q: must be 1 to 64 letters, digits, '.', '_' or '-'", p.cookieName)
	}
	p.forwardFor = boolOr(be.ForwardFor, true)
	p.redispatch = boolOr(be.Redispatch, true)
	p.retries = 3
	if be.Retries != nil {
		p.retries = *be.Retries
	}
	// A file uploaded to one front reaches the others a moment later
	// (agent/uploads): a GET that finds it missing on one is sent to
	// another. Only with redispatch: a retry on the same front would most
	// likely find it missing again.
	p.retryNotFound = p.redispatch && f.Spec.Uploads != nil && len(f.Spec.Uploads.Directories) > 0
	return inRange("spec.backend.retries", p.retries, 0, 100)
}

func planHealthCheck(p *farmPlan, f Farm) error {
	hc := f.Spec.HealthCheck
	p.checkMethod = string(orDefault(hc.Method, "HEAD"))
	switch p.checkMethod {
	case "HEAD", "GET", "OPTIONS":
	default:
		return fmt.Errorf("spec.healthCheck.method %q: must be HEAD, GET or OPTIONS", p.checkMethod)
	}
	p.checkPath = orDefault(hc.Path, "/check.txt")
	if err := uriPath("spec.healthCheck.path", p.checkPath, maxCheckPathLen); err != nil {
		return err
	}
	var err error
	if p.interMs, err = millis("spec.healthCheck.interval", hc.Interval.Duration, 2*time.Second, 100*time.Millisecond, time.Hour); err != nil {
		return err
	}
	if p.fastInterMs, err = millis("spec.healthCheck.fastInterval", hc.FastInterval.Duration, 500*time.Millisecond, 100*time.Millisecond, time.Hour); err != nil {
		return err
	}
	// A changing state is checked no less often than a steady one.
	p.fastInterMs = min(p.fastInterMs, p.interMs)
	if p.checkTimeoutMs, err = millis("spec.healthCheck.timeout", hc.Timeout.Duration, time.Second, 10*time.Millisecond, time.Hour); err != nil {
		return err
	}
	p.rise, p.fall = orDefault(hc.Rise, 2), orDefault(hc.Fall, 3)
	if err := inRange("spec.healthCheck.rise", p.rise, 1, 100); err != nil {
		return err
	}
	if err := inRange("spec.healthCheck.fall", p.fall, 1, 100); err != nil {
		return err
	}
	return planObserve(p, hc)
}

// planObserve maps the passive check of real traffic to HAProxy's words.
func planObserve(p *farmPlan, hc webfarmv1.HealthCheckSpec) error {
	switch orDefault(hc.Observe, webfarmv1.ObserveLayer4) {
	case webfarmv1.ObserveNone:
		return nil
	case webfarmv1.ObserveLayer4:
		p.observe = "layer4"
	case webfarmv1.ObserveLayer7:
		p.observe = "layer7"
	default:
		return fmt.Errorf("spec.healthCheck.observe %q: must be None, Layer4 or Layer7", hc.Observe)
	}
	p.errorLimit = orDefault(hc.ErrorLimit, 3)
	return inRange("spec.healthCheck.errorLimit", p.errorLimit, 1, 100)
}

func planTimeouts(p *farmPlan, f Farm) error {
	t := f.Spec.Timeouts
	var err error
	if p.connectMs, err = millis("spec.timeouts.connect", t.Connect.Duration, 100*time.Millisecond, time.Millisecond, 24*time.Hour); err != nil {
		return err
	}
	if p.clientMs, err = millis("spec.timeouts.client", t.Client.Duration, 50*time.Second, time.Millisecond, 24*time.Hour); err != nil {
		return err
	}
	p.srvMs, err = millis("spec.timeouts.server", t.Server.Duration, 50*time.Second, time.Millisecond, 24*time.Hour)
	return err
}

// planStats renders the page only when the spec enables it and credentials
// were resolved: an unguarded statistics page is never served.
func planStats(p *farmPlan, f Farm) error {
	s := f.Spec.Stats
	if s == nil || !s.Enabled {
		return nil
	}
	if f.Stats == nil {
		return fmt.Errorf("spec.stats.credentialsSecretRef: the page is enabled but no credentials were resolved")
	}
	p.statsURI = orDefault(s.URI, "/haproxy?stats")
	if err := uriPath("spec.stats.uri", p.statsURI, maxStatsURILen); err != nil {
		return err
	}
	if err := credential("spec.stats.credentialsSecretRef: username", f.Stats.User, false); err != nil {
		return err
	}
	if err := credential("spec.stats.credentialsSecretRef: password", f.Stats.Password, true); err != nil {
		return err
	}
	p.statsAuth = quoteWord(f.Stats.User + ":" + f.Stats.Password)
	return nil
}

func planErrorPages(p *farmPlan, f Farm) error {
	for code, page := range f.ErrorPages {
		if _, err := errorResponse(code, page); err != nil {
			return fmt.Errorf("spec.errorPages.configMapRef: key %q: %w", fmt.Sprint(code), err)
		}
		p.errorCodes = append(p.errorCodes, code)
	}
	slices.Sort(p.errorCodes)
	return nil
}

// planServers adds every front twice: the main server, whose check goes to
// the drain port (the DNAT rule maps it to the web port while the front
// serves), and the backup twin with the same cookie, checked on the web port.
// Both carry traffic to the web port, as in the original setup.
func planServers(p *farmPlan, f Farm) error {
	fronts := slices.Clone(f.Fronts)
	slices.SortFunc(fronts, func(a, b Front) int { return strings.Compare(a.Name, b.Name) })
	names, cookies := make(map[string]bool, 2*len(fronts)), make(map[string]string, len(fronts))
	p.servers = make([]serverPlan, 0, 2*len(fronts))
	for i, fr := range fronts {
		field := fmt.Sprintf("fronts[%d]", i)
		addr, err := frontAddress(field, fr)
		if err != nil {
			return err
		}
		if !tokenPattern.MatchString(fr.Cookie) {
			return fmt.Errorf("%s (%s).cookie %q: must be 1 to 64 letters, digits, '.', '_' or '-'", field, fr.Name, fr.Cookie)
		}
		if other, dup := cookies[fr.Cookie]; dup {
			return fmt.Errorf("%s (%s).cookie %q: already the cookie of front %s", field, fr.Name, fr.Cookie, other)
		}
		cookies[fr.Cookie] = fr.Name
		main, backup := ServerNames(fr.Name)
		for _, n := range []string{main, backup} {
			if names[n] {
				return fmt.Errorf("%s (%s).name: server name %q is used twice", field, fr.Name, n)
			}
			names[n] = true
		}
		hostPort := netip.AddrPortFrom(addr, uint16(p.webPort)).String()
		p.servers = append(p.servers,
			serverPlan{name: main, address: hostPort, cookie: fr.Cookie, checkPort: p.drainPort},
			serverPlan{name: backup, address: hostPort, cookie: fr.Cookie, backup: true})
	}
	return nil
}

func frontAddress(field string, fr Front) (netip.Addr, error) {
	if !isDNSName(fr.Name, 253, true) {
		return netip.Addr{}, fmt.Errorf("%s.name %q: must be a DNS name (a node name)", field, fr.Name)
	}
	addr := fr.Address.Unmap()
	if !addr.IsValid() || addr.IsUnspecified() || addr.IsMulticast() || addr.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%s (%s).address %q: must be a unicast address without zone", field, fr.Name, fr.Address)
	}
	return addr, nil
}

// validFarmKey reports whether key is <namespace>/<name>: a DNS label and a
// DNS subdomain, as Kubernetes names them.
func validFarmKey(key string) bool {
	ns, name, ok := strings.Cut(key, "/")
	return ok && isDNSName(ns, 63, false) && isDNSName(name, 253, true)
}

// isDNSName reports whether s is lower-case letters, digits and '-' (and '.'
// when dots), starting and ending with a letter or digit, at most max long.
// (A regular expression with these bounds is slow to match.)
func isDNSName(s string, max int, dots bool) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		inner := c == '-' || dots && c == '.'
		if !alnum && !(inner && i > 0 && i < len(s)-1) {
			return false
		}
	}
	return true
}

func checkRuntimeSocket(path string) error {
	if !socketPattern.MatchString(path) || strings.Contains(path, "/../") {
		return fmt.Errorf("runtime socket %q: must be an absolute path of at most 100 letters, digits, '.', '_', '-' and '/'", path)
	}
	return nil
}

func uriPath(field, v string, max int) error {
	if len(v) > max || !uriPathPattern.MatchString(v) {
		return fmt.Errorf("%s %q: must start with '/', hold at most %d characters and no spaces, quotes, '#', '$' or '\\'", field, v, max)
	}
	return nil
}

// credential accepts printable ASCII only: anything else would be encoded
// differently by different browsers. A password is never printed.
func credential(field, v string, secret bool) error {
	shown := fmt.Sprintf(" %q", v)
	if secret {
		shown = ""
	}
	if v == "" || len(v) > maxCredentialLen {
		return fmt.Errorf("%s%s: must hold 1 to %d characters", field, shown, maxCredentialLen)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return fmt.Errorf("%s%s: byte %d is not printable ASCII", field, shown, i)
		}
		if !secret && v[i] == ':' {
			return fmt.Errorf("%s%s: must not hold ':'", field, shown)
		}
	}
	return nil
}

func inRange(field string, v, lo, hi int32) error {
	if v < lo || v > hi {
		return fmt.Errorf("%s %d: must be between %d and %d", field, v, lo, hi)
	}
	return nil
}

// millis converts d (def when zero) to whole milliseconds, rounding up so
// that a sub-millisecond duration never becomes HAProxy's 0 ("no timeout").
func millis(field string, d, def, lo, hi time.Duration) (int64, error) {
	if d == 0 {
		d = def
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("%s %s: must be between %s and %s", field, d, lo, hi)
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond), nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func boolOr(v *bool, def bool) bool {
	if v == nil {
		return def
	}
	return *v
}
