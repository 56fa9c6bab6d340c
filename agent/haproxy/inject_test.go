package haproxy

import (
	"bufio"
	"bytes"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzFarm is the sample farm with the fuzzed strings in every user-controlled
// place. Stats and one error page are always on, so that a valid rendering
// always has the same number of lines.
func fuzzFarm(base Farm, key, front, cookieName, checkPath, statsURI, user, password, cookie string, page []byte) Farm {
	f := base
	f.Key = key
	spec := base.Spec
	spec.Backend.Cookie.Name = cookieName
	spec.HealthCheck.Path = checkPath
	stats := *base.Spec.Stats
	stats.URI = statsURI
	spec.Stats = &stats
	f.Spec = spec
	f.Fronts = []Front{
		{Name: front, Address: netip.MustParseAddr("192.0.2.11"), Cookie: cookie},
		{Name: "zz-other", Address: netip.MustParseAddr("192.0.2.12"), Cookie: "other-cookie"},
	}
	f.Stats = &Credentials{User: user, Password: password}
	f.ErrorPages = map[int][]byte{503: page}
	return f
}

// fieldNames are the fields a Render error may name.
var fieldNames = []string{
	"key", "spec.backend.cookie.name", "spec.healthCheck.path", "spec.stats.uri",
	"spec.stats.credentialsSecretRef: username", "spec.stats.credentialsSecretRef: password",
	"spec.errorPages.configMapRef", ".name", ".cookie", "runtime socket",
}

func namesAField(err error) bool {
	msg := err.Error()
	if !strings.HasPrefix(msg, "farm ") {
		return false
	}
	for _, f := range fieldNames {
		if strings.Contains(msg, f) {
			return true
		}
	}
	return false
}

func TestRenderRefusesInjection(t *testing.T) {
	good := []string{"default/web", "front1", "SERVERID", "/check.txt", "/stats", "admin", "secret", "abcd1234"}
	page := []byte("<html>down</html>")
	cases := []struct {
		name  string
		field int // index into good
		value string
		page  []byte
		want  string
	}{
		{"key newline", 0, "default/web\n    stats enable", nil, "key"},
		{"key space", 0, "default/web x", nil, "key"},
		{"front name newline", 1, "front1 10.0.0.1:80\n    server evil", nil, "fronts[0].name"},
		{"front name hash", 1, "front1#", nil, "fronts[0].name"},
		{"cookie name space", 2, "SERVERID prefix", nil, "spec.backend.cookie.name"},
		{"cookie name newline", 2, "A\n    stats enable", nil, "spec.backend.cookie.name"},
		{"check path newline", 3, "/x HTTP/1.0\n    server evil 10.0.0.1:80", nil, "spec.healthCheck.path"},
		{"check path hash", 3, "/x#comment", nil, "spec.healthCheck.path"},
		{"check path space", 3, "/x HTTP/1.1", nil, "spec.healthCheck.path"},
		{"check path dollar", 3, "/${HOME}", nil, "spec.healthCheck.path"},
		{"stats uri newline", 4, "/s\n    stats admin if TRUE", nil, "spec.stats.uri"},
		{"user colon", 5, "ad:min", nil, "spec.stats.credentialsSecretRef: username"},
		{"user newline", 5, "admin\nstats", nil, "spec.stats.credentialsSecretRef: username"},
		{"password newline", 6, "pw\n    stats admin if TRUE", nil, "spec.stats.credentialsSecretRef: password"},
		{"password NUL", 6, "pw\x00", nil, "spec.stats.credentialsSecretRef: password"},
		{"front cookie space", 7, "ab cd", nil, "fronts[0] (front1).cookie"},
		{"front cookie hash", 7, "ab#cd", nil, "fronts[0] (front1).cookie"},
		{"page header injection", -1, "", []byte("HTTP/1.0 503 Busy\r\nX: a\nSet-Cookie: x\r\n\r\n"), "spec.errorPages.configMapRef"},
		{"page wrong status", -1, "", []byte("HTTP/1.0 200 OK\r\n\r\nhi"), "spec.errorPages.configMapRef"},
		{"page bad length", -1, "", []byte("HTTP/1.1 503 Busy\r\nContent-Length: 99\r\n\r\nhi"), "spec.errorPages.configMapRef"},
		{"page too big", -1, "", bytes.Repeat([]byte("x"), maxErrorBody+1), "spec.errorPages.configMapRef"},
	}
	base := sampleFarm(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := append([]string(nil), good...)
			p := page
			if tc.field >= 0 {
				v[tc.field] = tc.value
			} else {
				p = tc.page
			}
			f := fuzzFarm(base, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], p)
			_, err := Render(Config{Farms: []Farm{f}, RuntimeSocket: testSocket})
			if err == nil {
				t.Fatalf("rendered %q without error", tc.value)
			}
			if !strings.Contains(err.Error(), tc.want) || !namesAField(err) {
				t.Fatalf("error %q does not name %s", err, tc.want)
			}
			if tc.field == 6 && strings.Contains(err.Error(), "pw") {
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
	if _, err := Render(Config{Farms: []Farm{fuzzFarm(base, good[0], good[1], good[2], good[3], good[4], good[5], good[6], good[7], page)}, RuntimeSocket: testSocket}); err != nil {
		t.Fatalf("the good values are refused: %v", err)
	}
}

func TestRenderRefusesConflicts(t *testing.T) {
	a, b := sampleFarm(t), sampleFarm(t)
	b.Key = "other/webfarm"
	if _, err := Render(Config{Farms: []Farm{a, b}, RuntimeSocket: testSocket}); err == nil || !strings.Contains(err.Error(), "*:80: farms default/webfarm and other/webfarm both serve every hostname") {
		t.Errorf("two farms on one port: err = %v", err)
	}
	b.Addresses = []netip.Addr{netip.MustParseAddr("192.0.2.20")}
	if _, err := Render(Config{Farms: []Farm{a, b}, RuntimeSocket: testSocket}); err != nil {
		t.Errorf("two farms on one port of different addresses: %v", err)
	}
	c := sampleFarm(t)
	c.Fronts[1].Cookie = c.Fronts[0].Cookie
	if _, err := Render(Config{Farms: []Farm{c}, RuntimeSocket: testSocket}); err == nil || !strings.Contains(err.Error(), "already the cookie of front front1") {
		t.Errorf("two fronts with one cookie: err = %v", err)
	}
	d := sampleFarm(t)
	d.Fronts[1].Name = "front1-backup"
	if _, err := Render(Config{Farms: []Farm{d}, RuntimeSocket: testSocket}); err == nil || !strings.Contains(err.Error(), `server name "front1-backup" is used twice`) {
		t.Errorf("a node named like a backup twin: err = %v", err)
	}
	e := sampleFarm(t)
	e.Stats = nil
	if _, err := Render(Config{Farms: []Farm{e}, RuntimeSocket: testSocket}); err == nil || !strings.Contains(err.Error(), "spec.stats.credentialsSecretRef") {
		t.Errorf("stats page without credentials: err = %v", err)
	}
}

// FuzzRender checks that whatever the user-controlled strings, Render either
// refuses them with an error naming a field, or renders a configuration that
// haproxy accepts (when installed), with exactly the lines of a harmless
// rendering and error files that are well-framed HTTP responses.
func FuzzRender(f *testing.F) {
	seeds := [][]string{
		{"default/web", "front1", "SERVERID", "/check.txt", "/stats", "admin", "secret", "abcd1234"},
		{"a/b", "n", "C", "/", "/", "u", "p", "c"},
		{"default/web", "front1", "SERVERID", "/check.txt", "/stats", `o'neil"`, `#$\ '"`, "abcd1234"},
		{"default/web\nx", "front1\n", "A B", "/x\n#", "/s s", "a:b", "p\n", "c d"},
		{"ns/name.with.dots", "node.example.com", "a.b_c-d", "/a?b=c&d=%20", "/haproxy?stats", "x", ":::", "Z9"},
	}
	pages := [][]byte{
		[]byte("<html>busy</html>"),
		[]byte("HTTP/1.0 503 Busy\r\nRetry-After: 5\r\n\r\nbusy"),
		[]byte("HTTP/1.1 503 X\r\nA: b\r\nContent-Length: 1\r\n\r\nx"),
		[]byte("HTTP/1.1 503\r\n\r\n"),
		[]byte("\r\n\r\n\x00"),
	}
	for i, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], pages[i%len(pages)])
	}
	base := sampleFarm(f)
	benign := fuzzFarm(base, "default/web", "front1", "SERVERID", "/check.txt", "/stats", "admin", "secret", "abcd1234", []byte("x"))
	want, err := Render(Config{Farms: []Farm{benign}, RuntimeSocket: testSocket})
	if err != nil {
		f.Fatal(err)
	}
	wantLines := bytes.Count(want, []byte("\n"))
	f.Fuzz(func(t *testing.T, key, front, cookieName, checkPath, statsURI, user, password, cookie string, page []byte) {
		c := Config{Farms: []Farm{fuzzFarm(base, key, front, cookieName, checkPath, statsURI, user, password, cookie, page)}, RuntimeSocket: testSocket}
		cfg, err := Render(c)
		if err != nil {
			if !namesAField(err) {
				t.Fatalf("error does not name a field: %v", err)
			}
			return
		}
		if got := bytes.Count(cfg, []byte("\n")); got != wantLines {
			t.Fatalf("%d lines instead of %d:\n%s", got, wantLines, cfg)
		}
		files := ErrorFiles(c)
		for path, content := range files {
			checkResponse(t, path, content)
		}
		dir := t.TempDir()
		if err := writeTree(dir, cfg, files); err != nil {
			t.Fatal(err)
		}
		checkWithHAProxy(t, dir)
		_ = os.RemoveAll(filepath.Join(dir, errorsDir))
	})
}

// checkResponse fails t unless content is one complete HTTP response.
func checkResponse(t *testing.T, path string, content []byte) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(content)), nil)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if resp.ContentLength < 0 || int(resp.ContentLength) != len(content)-headerLength(content) {
		t.Fatalf("%s: Content-Length %d does not frame the body:\n%q", path, resp.ContentLength, content)
	}
}

func headerLength(content []byte) int {
	return bytes.Index(content, []byte("\r\n\r\n")) + 4
}

// FuzzRenderSite: whatever a Site's key and hostnames hold, Render either
// refuses them naming a field, or renders as many lines as a harmless site
// does, and a crt-list line per certificate: nothing starts a directive.
func FuzzRenderSite(f *testing.F) {
	f.Add("default/www", "www.example.com", "*.example.org")
	f.Add("default/www\nx", "www.example.com }\n  use_backend x", "*.a b")
	f.Add("a/b", "a.b", "*.*.c.d")
	farm := sampleFarm(f)
	cert := []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
	site := func(key, h1, h2 string) Config {
		return Config{
			Farms:              []Farm{farm},
			Sites:              []Site{{Key: key, Farm: farm.Key, Hostnames: []string{h1, h2}, TLSPort: 443, Certificate: cert, RedirectToHTTPS: true}},
			DefaultCertificate: cert, RuntimeSocket: testSocket,
		}
	}
	want, err := Render(site("default/www", "www.example.com", "*.example.org"))
	if err != nil {
		f.Fatal(err)
	}
	wantLines := bytes.Count(want, []byte("\n"))
	f.Fuzz(func(t *testing.T, key, h1, h2 string) {
		c := site(key, h1, h2)
		cfg, err := Render(c)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "site ") || !strings.Contains(msg, "key:") && !strings.Contains(msg, "spec.hostnames[") {
				t.Fatalf("error does not name a field: %v", err)
			}
			return
		}
		sameShape := !strings.HasPrefix(h1, "*.") && strings.HasPrefix(h2, "*.")
		if got := bytes.Count(cfg, []byte("\n")); sameShape && got != wantLines {
			t.Fatalf("%d lines instead of %d:\n%s", got, wantLines, cfg)
		}
		for path, content := range Files(c) {
			if strings.HasSuffix(path, ".list") && bytes.Count(content, []byte("\n")) != 1 {
				t.Fatalf("%s holds %d lines:\n%s", path, bytes.Count(content, []byte("\n")), content)
			}
		}
		for _, s := range []string{key, h1, h2} {
			if strings.ContainsAny(s, " \t\r\n#'\"\\{}$%") {
				t.Fatalf("rendered a field holding a special character: %q", s)
			}
		}
	})
}
