package nginx

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Vhost is one Site as nginx serves it on a front.
type Vhost struct {
	// Key is the Site's "namespace/name".
	Key string
	// Port is the farm's web port, where HAProxy sends the site's requests.
	Port int32
	// Hostnames are lower-case DNS names, or "*.<name>" for one more label.
	Hostnames []string
	// Root is the directory of the site's files; or else Proxy* are set.
	Root  string
	Index []string
	// ProxyPort or ProxySocket is the local application requests go to.
	ProxyPort   int32
	ProxySocket string
	// ClientMaxBodySize in nginx's words ("1m"); empty: nginx's default.
	ClientMaxBodySize string
}

// Config is every vhost of the node, and the check path of each web port.
type Config struct {
	Vhosts []Vhost
	// CheckPaths maps a web port to HAProxy's check path on it, answered
	// by the default server of the port and never logged.
	CheckPaths map[int32]string
	// AccessLog is the file every vhost logs to, in the original format.
	AccessLog string
	// Hidden are names of directories that no vhost serves, at any depth
	// of its tree: the uploads' state, which sits inside the synced
	// directories and so inside the served tree.
	Hidden []string
}

// Files in the directory: the http-level settings, a default server per
// web port (sorted first), and a vhost per site.
const (
	commonFile = "00-webfarm.conf"
	logFormat  = "webfarm"
)

// Strings that reach the configuration unquoted: the CRD's patterns,
// checked again.
var (
	pathPattern  = regexp.MustCompile(`^/[A-Za-z0-9._/-]*$`)
	sizePattern  = regexp.MustCompile(`^[0-9]{1,6}[km]?$`)
	namePattern  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	hostPattern  = regexp.MustCompile(`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$`)
	keyPattern   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)
	checkPattern = regexp.MustCompile(`^/[A-Za-z0-9._~!&()*+,;=:@%/-]*$`)
)

// VhostFile is the file of a site's vhost.
func VhostFile(key string) string { return "site_" + strings.Replace(key, "/", "_", 1) + ".conf" }

// Render returns the files of c by name. A vhost with a field that cannot
// be used is left out and named in the errors; the rest is rendered.
func Render(c Config) (map[string][]byte, []error) {
	files := map[string][]byte{}
	var errs []error
	ports := map[int32]bool{}
	if !cleanPath(c.AccessLog) {
		return nil, []error{fmt.Errorf("access log %q: must be an absolute path of letters, digits, '.', '_', '-' and '/'", c.AccessLog)}
	}
	for _, h := range c.Hidden {
		if !namePattern.MatchString(h) || h == "." || h == ".." {
			return nil, []error{fmt.Errorf("hidden directory %q: must be a file name of letters, digits, '.', '_' and '-'", h)}
		}
	}
	vhosts := slices.Clone(c.Vhosts)
	slices.SortFunc(vhosts, func(a, b Vhost) int { return strings.Compare(a.Key, b.Key) })
	for _, v := range vhosts {
		text, err := renderVhost(v, c.AccessLog, c.Hidden)
		if err != nil {
			errs = append(errs, fmt.Errorf("site %q: %w", v.Key, err))
			continue
		}
		files[VhostFile(v.Key)] = text
		ports[v.Port] = true
	}
	common, err := renderCommon(c, ports)
	if err != nil {
		return nil, append(errs, err)
	}
	files[commonFile] = common
	return files, errs
}

// renderCommon writes the original setup's log format (the client's
// address from X-Forwarded-For first, then the proxy's), which paths are
// not logged, and the default server of each web port, which answers
// HAProxy's checks, sent without a Host.
func renderCommon(c Config, ports map[int32]bool) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Rendered by webfarm-agent; edits are overwritten.\n")
	fmt.Fprintf(&b, "log_format %s '$http_x_forwarded_for - $remote_user [$time_local] '\n", logFormat)
	b.WriteString("                '\"$request\" $status $body_bytes_sent \"$http_referer\" '\n")
	b.WriteString("                '\"$http_user_agent\" \"$remote_addr\"';\n")
	sorted := make([]int32, 0, len(ports))
	for p := range ports {
		sorted = append(sorted, p)
	}
	slices.Sort(sorted)
	for _, port := range sorted {
		check, _, _ := strings.Cut(c.CheckPaths[port], "?")
		if check == "" {
			check = "/check.txt"
		}
		if !checkPattern.MatchString(check) {
			return nil, fmt.Errorf("check path %q of port %d: must start with '/' and hold no spaces, quotes or '#'", check, port)
		}
		fmt.Fprintf(&b, "\n# Port %d: HAProxy's check, and hosts that no site names.\n", port)
		b.WriteString("server {\n")
		fmt.Fprintf(&b, "    listen %d default_server;\n", port)
		fmt.Fprintf(&b, "    access_log %s %s;\n", c.AccessLog, logFormat)
		fmt.Fprintf(&b, "    location = %s {\n        access_log off;\n        default_type text/plain;\n        return 200 \"ok\\n\";\n    }\n", check)
		b.WriteString("    location / {\n        return 404;\n    }\n")
		b.WriteString("}\n")
	}
	return b.Bytes(), nil
}

func renderVhost(v Vhost, accessLog string, hidden []string) ([]byte, error) {
	if err := checkVhost(v); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Site %s, rendered by webfarm-agent; edits are overwritten.\n", v.Key)
	b.WriteString("server {\n")
	fmt.Fprintf(&b, "    listen %d;\n", v.Port)
	fmt.Fprintf(&b, "    server_name %s;\n", strings.Join(serverNames(v.Hostnames), " "))
	fmt.Fprintf(&b, "    access_log %s %s;\n", accessLog, logFormat)
	if v.ClientMaxBodySize != "" {
		fmt.Fprintf(&b, "    client_max_body_size %s;\n", v.ClientMaxBodySize)
	}
	// A regular expression, so that it wins over every prefix location and
	// catches the directory wherever the synced tree sits below the root.
	for _, h := range hidden {
		fmt.Fprintf(&b, "    location ~ /%s(/|$) {\n        deny all;\n    }\n", regexp.QuoteMeta(h))
	}
	if v.Root != "" {
		fmt.Fprintf(&b, "    root %s;\n", v.Root)
		if len(v.Index) > 0 {
			fmt.Fprintf(&b, "    index %s;\n", strings.Join(v.Index, " "))
		}
		b.WriteString("    location / {\n        try_files $uri $uri/ =404;\n    }\n")
	} else {
		writeProxy(&b, v)
	}
	b.WriteString("}\n")
	return b.Bytes(), nil
}

// writeProxy passes requests on with the headers HAProxy set: the client's
// address and scheme are HAProxy's to tell, not nginx's.
func writeProxy(b *bytes.Buffer, v Vhost) {
	upstream := fmt.Sprintf("http://127.0.0.1:%d", v.ProxyPort)
	if v.ProxySocket != "" {
		upstream = "http://unix:" + v.ProxySocket + ":"
	}
	b.WriteString("    location / {\n")
	fmt.Fprintf(b, "        proxy_pass %s;\n", upstream)
	b.WriteString("        proxy_http_version 1.1;\n")
	b.WriteString("        proxy_set_header Connection \"\";\n")
	b.WriteString("        proxy_set_header Host $host;\n")
	b.WriteString("        proxy_set_header X-Forwarded-For $http_x_forwarded_for;\n")
	b.WriteString("        proxy_set_header X-Forwarded-Proto $http_x_forwarded_proto;\n")
	b.WriteString("    }\n")
}

// serverNames writes a wildcard as a regular expression of one label, the
// rule of certificates and HAProxy; nginx's own "*.name" would match any
// depth.
func serverNames(hosts []string) []string {
	out := make([]string, len(hosts))
	for i, h := range hosts {
		if rest, wild := strings.CutPrefix(h, "*"); wild {
			out[i] = `"~^[^.]+` + strings.ReplaceAll(rest, ".", `\.`) + `$"`
			continue
		}
		out[i] = h
	}
	slices.Sort(out)
	return out
}

func checkVhost(v Vhost) error {
	if !keyPattern.MatchString(v.Key) {
		return fmt.Errorf("key: must be <namespace>/<name> of DNS names")
	}
	if v.Port < 1 || v.Port > 65535 {
		return fmt.Errorf("web port %d: must be between 1 and 65535", v.Port)
	}
	if len(v.Hostnames) == 0 {
		return fmt.Errorf("spec.hostnames: none")
	}
	for i, h := range v.Hostnames {
		if len(h) > 253 || !hostPattern.MatchString(h) {
			return fmt.Errorf("spec.hostnames[%d] %q: must be a lower-case DNS name or *.<name>", i, h)
		}
	}
	if err := checkTarget(v); err != nil {
		return err
	}
	for i, idx := range v.Index {
		if !namePattern.MatchString(idx) {
			return fmt.Errorf("spec.webServer.index[%d] %q: must be a file name of letters, digits, '.', '_' and '-'", i, idx)
		}
	}
	if v.ClientMaxBodySize != "" && !sizePattern.MatchString(v.ClientMaxBodySize) {
		return fmt.Errorf("spec.webServer.clientMaxBodySize %q: must be a number with an optional k or m", v.ClientMaxBodySize)
	}
	return nil
}

// checkTarget: exactly one of root, proxy port and proxy socket, each a
// plain value.
func checkTarget(v Vhost) error {
	set := 0
	for _, s := range []bool{v.Root != "", v.ProxyPort != 0, v.ProxySocket != ""} {
		if s {
			set++
		}
	}
	switch {
	case set != 1:
		return fmt.Errorf("spec.webServer: set exactly one of root, proxy.port and proxy.socket")
	case v.Root != "" && !cleanPath(v.Root):
		return fmt.Errorf("spec.webServer.root %q: must be an absolute path of letters, digits, '.', '_', '-' and '/', without '..'", v.Root)
	case v.ProxySocket != "" && (!cleanPath(v.ProxySocket) || len(v.ProxySocket) > 107):
		return fmt.Errorf("spec.webServer.proxy.socket %q: must be an absolute path of letters, digits, '.', '_', '-' and '/', without '..'", v.ProxySocket)
	case v.ProxyPort < 0 || v.ProxyPort > 65535:
		return fmt.Errorf("spec.webServer.proxy.port %d: must be between 1 and 65535", v.ProxyPort)
	}
	return nil
}

func cleanPath(p string) bool {
	return pathPattern.MatchString(p) && !slices.Contains(strings.Split(p, "/"), "..")
}
