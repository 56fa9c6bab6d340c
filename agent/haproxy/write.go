package haproxy

import (
	"bytes"
	"fmt"
	"net/netip"
	"path"
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

func writeGlobal(b *bytes.Buffer, c Config, plans []farmPlan) {
	runtimeSocket := c.RuntimeSocket
	maxConn := int64(0)
	for _, p := range plans {
		maxConn += int64(p.maxConn)
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

// writeFarm writes one farm as a listen section, in the order of the
// original haproxy.cfg.
func writeFarm(b *bytes.Buffer, p farmPlan, ipv4Only, logged bool) {
	fmt.Fprintf(b, "\n# WebFarm %s\nlisten %s\n", p.key, p.name)
	// Two sockets rather than one dual-stack socket: IPv4 clients then
	// reach HAProxy as IPv4 addresses, not IPv4-mapped IPv6 ones, and
	// X-Forwarded-For and the web servers' logs show them as such.
	fmt.Fprintf(b, "    bind 0.0.0.0:%d\n", p.port)
	if !ipv4Only {
		fmt.Fprintf(b, "    bind [::]:%d v6only\n", p.port)
	}
	b.WriteString("    mode http\n")
	// HAProxy answers this path itself, backends or not: the agent's
	// serving check asks it on loopback.
	fmt.Fprintf(b, "    monitor-uri %s\n", webfarmv1.ServingCheckPath)
	if logged {
		writeFarmLog(b, p)
	}
	fmt.Fprintf(b, "    maxconn %d\n", p.maxConn)
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
		b.WriteString("    retry-on conn-failure empty-response\n")
		b.WriteString("    http-request disable-l7-retry unless METH_GET\n")
	}
	if p.redispatch {
		// Every retry goes to another front: a dead one costs a request
		// one connect timeout, not retries of them.
		b.WriteString("    option redispatch 1\n")
	}
	fmt.Fprintf(b, "    timeout connect %dms\n", p.connectMs)
	fmt.Fprintf(b, "    timeout client %dms\n", p.clientMs)
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

// writeFarmLog logs every request as the original setup did (`log global`,
// `option httplog`), except the health checks of the farm's check path, which
// a load balancer in front may send every second. The serving check
// (monitor-uri) is answered before any log.
func writeFarmLog(b *bytes.Buffer, p farmPlan) {
	b.WriteString("    log global\n")
	b.WriteString("    option httplog\n")
	checkPath, _, _ := strings.Cut(p.checkPath, "?")
	fmt.Fprintf(b, "    http-request set-log-level silent if { path %s }\n", checkPath)
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
