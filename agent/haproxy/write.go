package haproxy

import (
	"bytes"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// maxGlobalMaxConn bounds the global connection limit, which HAProxy turns
// into a file-descriptor limit, whatever the farms ask for.
const maxGlobalMaxConn = 1000000

// Access log: HAProxy builds each line in the httplog format and sends it,
// without a syslog header, to the unix datagram socket the agent reads. Its
// log sockets are non-blocking: a line that finds the socket full or
// unbound is dropped (and counted in `show info` DroppedLogs), so nobody
// reading never slows a request.
const logLineMax = 8192

func writeGlobal(b *bytes.Buffer, c Config, pl configPlan) {
	runtimeSocket := c.RuntimeSocket
	maxConn := int64(0)
	for _, fe := range pl.frontends {
		maxConn += fe.maxConn
	}
	maxConn = min(max(maxConn, minGlobalMaxConn), maxGlobalMaxConn)
	b.WriteString("# Rendered by webfarm-agent from the WebFarms that select this node; edits are overwritten.\n")
	b.WriteString("global\n")
	b.WriteString("    master-worker\n")
	// Error files are named relative to this file, so that a staging copy
	// validates with its own error files.
	b.WriteString("    default-path config\n")
	fmt.Fprintf(b, "    stats socket %s mode 600 level admin expose-fd listeners\n", runtimeSocket)
	// Process.Apply saves the servers' states there before each reload, so
	// that the new worker keeps their health and runtime drain.
	fmt.Fprintf(b, "    server-state-file %s\n", path.Join(path.Dir(runtimeSocket), ServerStateFile))
	fmt.Fprintf(b, "    maxconn %d\n", maxConn)
	fmt.Fprintf(b, "    hard-stop-after %s\n", hardStopAfter)
	fmt.Fprintf(b, "    mworker-max-reloads %d\n", maxReloads)
	if c.LogSocket != "" {
		fmt.Fprintf(b, "    log %s len %d format raw local0 info\n", c.LogSocket, logLineMax)
	}
	if slices.ContainsFunc(pl.frontends, func(fe *frontendPlan) bool { return fe.endpoint.tls }) {
		fmt.Fprintf(b, "    ssl-default-bind-ciphers %s\n", tlsCiphers)
		fmt.Fprintf(b, "    ssl-default-bind-ciphersuites %s\n", tlsCipherSuites)
		fmt.Fprintf(b, "    ssl-default-bind-options %s\n", tlsOptions)
	}
	b.WriteString("\ndefaults\n")
	b.WriteString("    mode http\n")
	b.WriteString("    option dontlognull\n")
	b.WriteString("    load-server-state-from-file global\n")
}

// writeMetrics writes the frontend of HAProxy's Prometheus exporter, which
// is never logged: every scrape would be an access-log line.
func writeMetrics(b *bytes.Buffer, addr netip.AddrPort) {
	if !addr.IsValid() {
		return
	}
	b.WriteString("\n# HAProxy's own figures for Prometheus, on the node's address only.\n")
	b.WriteString("frontend webfarm-metrics\n")
	fmt.Fprintf(b, "    bind %s\n", addr)
	b.WriteString("    mode http\n")
	b.WriteString("    no log\n")
	b.WriteString("    maxconn 16\n")
	b.WriteString("    timeout client 10s\n")
	b.WriteString("    timeout http-request 5s\n")
	fmt.Fprintf(b, "    http-request use-service prometheus-exporter if { path %s }\n", MetricsPath)
	b.WriteString("    http-request deny deny_status 404\n")
}

// writeFrontend writes the frontend of one address and port: every site
// on it routed by Host to its farm's backend, the farm without sites (or
// the only farm) for any other host.
func writeFrontend(b *bytes.Buffer, fe *frontendPlan, logged bool) {
	proto := "http"
	if fe.endpoint.tls {
		proto = "https"
	}
	fmt.Fprintf(b, "\n# %s (%s): %s\nfrontend %s\n", endpointString(fe.endpoint), proto, farmKeys(fe), fe.name)
	for _, bind := range fe.binds {
		if fe.endpoint.tls {
			bind += fmt.Sprintf(" ssl crt %s crt-list %s alpn %s", defaultCertFile, crtListFile(fe), alpn)
		}
		fmt.Fprintf(b, "    bind %s\n", bind)
	}
	b.WriteString("    mode http\n")
	// HAProxy answers this path itself, backends or not: the agent's
	// serving check asks it on loopback.
	fmt.Fprintf(b, "    monitor-uri %s\n", webfarmv1.ServingCheckPath)
	if logged {
		writeFrontendLog(b, fe)
	}
	fmt.Fprintf(b, "    maxconn %d\n", fe.maxConn)
	fmt.Fprintf(b, "    timeout client %dms\n", fe.clientMs)
	// The host without its port, for routing; only a name that matched a
	// site's names is ever written back (in a redirect).
	b.WriteString("    http-request set-var(txn.host) req.hdr(host),field(1,:),lower\n")
	fmt.Fprintf(b, "    http-request set-header X-Forwarded-Proto %s\n", proto)
	for _, s := range fe.sites {
		if !fe.endpoint.tls && s.redirect != "" {
			fmt.Fprintf(b, "    http-request redirect location %s code 301 if %s\n", s.redirect, hostACL(s))
		}
		if fe.endpoint.tls && s.hsts != "" {
			fmt.Fprintf(b, "    http-response set-header Strict-Transport-Security %s if %s\n", quoteWord(s.hsts), hostACL(s))
		}
	}
	if fe.errorFarm != nil {
		for _, code := range fe.errorFarm.errorCodes {
			fmt.Fprintf(b, "    errorfile %d %s\n", code, ErrorFilePath(fe.errorFarm.key, code))
		}
	}
	// Exact names first: they win over wildcards, as in SNI and nginx.
	for _, s := range fe.sites {
		if len(s.exact) > 0 {
			fmt.Fprintf(b, "    use_backend %s if { var(txn.host) -m str %s }\n", s.backend, strings.Join(s.exact, " "))
		}
	}
	for _, s := range fe.sites {
		if len(s.wild) > 0 {
			fmt.Fprintf(b, "    use_backend %s if { var(txn.host) -m reg %s }\n", s.backend, wildRegexes(s))
		}
	}
	fmt.Fprintf(b, "    default_backend %s\n", fe.defaultBackend)
}

// hostACL matches the site's names: exact or wildcard.
func hostACL(s sitePlan) string {
	var acls []string
	if len(s.exact) > 0 {
		acls = append(acls, "{ var(txn.host) -m str "+strings.Join(s.exact, " ")+" }")
	}
	if len(s.wild) > 0 {
		acls = append(acls, "{ var(txn.host) -m reg "+wildRegexes(s)+" }")
	}
	return strings.Join(acls, " || ")
}

func wildRegexes(s sitePlan) string {
	res := make([]string, len(s.wild))
	for i, w := range s.wild {
		res[i] = hostRegex(w)
	}
	return strings.Join(res, " ")
}

// writeFrontendLog logs every request as the original setup did (`log
// global`, `option httplog`), except the health checks of the farms' check
// paths, which a load balancer in front may send every second. The serving
// check (monitor-uri) is answered before any log.
func writeFrontendLog(b *bytes.Buffer, fe *frontendPlan) {
	b.WriteString("    log global\n")
	b.WriteString("    option httplog\n")
	paths := make([]string, 0, len(fe.checkPaths))
	for _, p := range fe.checkPaths {
		p, _, _ = strings.Cut(p, "?")
		if !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
	}
	fmt.Fprintf(b, "    http-request set-log-level silent if { path %s }\n", strings.Join(paths, " "))
}

// writeBackend writes one farm's backend, in the order of the original
// haproxy.cfg.
func writeBackend(b *bytes.Buffer, p farmPlan) {
	fmt.Fprintf(b, "\n# WebFarm %s\nbackend %s\n", p.key, p.name)
	b.WriteString("    mode http\n")
	fmt.Fprintf(b, "    balance %s\n", p.balance)
	fmt.Fprintf(b, "    cookie %s insert indirect nocache\n", p.cookieName)
	if p.forwardFor {
		b.WriteString("    option forwardfor\n")
	}
	fmt.Fprintf(b, "    option httpchk %s %s HTTP/1.0\n", p.checkMethod, p.checkPath)
	fmt.Fprintf(b, "    retries %d\n", p.retries)
	if p.retries > 0 {
		// A front that dies while a request is on it closes the connection
		// with no answer: a GET or HEAD is sent again, elsewhere; other
		// methods may have taken effect and are not.
		retryOn := "conn-failure empty-response"
		if p.retryNotFound {
			// Uploads not yet on every front: a 404 is retried on
			// another front, as HAProxy's documentation suggests for
			// objects not yet replicated. A real 404 costs retries+1
			// answers from the fronts (docs/architecture.md).
			retryOn += " 404"
		}
		fmt.Fprintf(b, "    retry-on %s\n", retryOn)
		b.WriteString("    http-request disable-l7-retry unless METH_GET\n")
	}
	if p.redispatch {
		// Every retry goes to another front: a dead one costs a request
		// one connect timeout, not retries of them.
		b.WriteString("    option redispatch 1\n")
	}
	fmt.Fprintf(b, "    timeout connect %dms\n", p.connectMs)
	fmt.Fprintf(b, "    timeout server %dms\n", p.srvMs)
	fmt.Fprintf(b, "    timeout check %dms\n", p.checkTimeoutMs)
	if p.statsAuth != "" {
		b.WriteString("    stats enable\n")
		b.WriteString("    stats scope .\n")
		fmt.Fprintf(b, "    stats uri %s\n", p.statsURI)
		fmt.Fprintf(b, "    stats auth %s\n", p.statsAuth)
	}
	for _, code := range p.errorCodes {
		fmt.Fprintf(b, "    errorfile %d %s\n", code, ErrorFilePath(p.key, code))
	}
	fmt.Fprintf(b, "    default-server inter %dms fastinter %dms rise %d fall %d", p.interMs, p.fastInterMs, p.rise, p.fall)
	if p.observe != "" {
		// A server marked down by real traffic comes back through its
		// check, after rise good ones.
		fmt.Fprintf(b, " observe %s error-limit %d on-error mark-down", p.observe, p.errorLimit)
	}
	b.WriteByte('\n')
	for _, s := range p.servers {
		writeServer(b, s)
	}
}

// writeNoSiteBackend answers hosts that no site of a shared frontend names.
func writeNoSiteBackend(b *bytes.Buffer) {
	fmt.Fprintf(b, "\n# Hosts that no site names, on frontends that several farms share.\nbackend %s\n", noSiteBackend)
	b.WriteString("    mode http\n")
	b.WriteString("    http-request deny deny_status 404\n")
}

func writeServer(b *bytes.Buffer, s serverPlan) {
	fmt.Fprintf(b, "    server %s %s cookie %s check", s.name, s.address, s.cookie)
	if s.checkPort != 0 {
		fmt.Fprintf(b, " port %d", s.checkPort)
	}
	if s.backup {
		b.WriteString(" backup")
	}
	b.WriteByte('\n')
}

// quoteWord makes s one configuration word that HAProxy reads back as it
// is: inside single quotes nothing is special (no '#', '$', '\' or space),
// and a single quote itself is closed, escaped and reopened.
func quoteWord(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
