package v1alpha1_test

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/webfarm/webfarm/internal/testenv"
)

// The bad Sites join the objects TestEnvtestInvalidObjectsAreRejected
// proves refused, each naming its field.
func init() { invalidObjects = append(append(invalidObjects, invalidSites...), invalidFarms...) }

// TestEnvtestSitesAccepted: the API server accepts each kind of good Site.
func TestEnvtestSitesAccepted(t *testing.T) {
	env := testenv.Start(t)
	ns := newNamespace(t, env)
	for name, obj := range map[string]func() *unstructured.Unstructured{
		"plain":             site(),
		"wildcard":          site(set("hostnames", []any{"*.example.com", "example.com"})),
		"https with hsts":   site(set("tls.secretName", "www-tls"), set("redirectToHTTPS", true), set("hsts.preload", true), set("hsts.includeSubDomains", true)),
		"proxy to a port":   site(unset("webServer.root"), set("webServer.proxy.port", int64(3000))),
		"proxy to a socket": site(unset("webServer.root"), set("webServer.proxy.socket", "/run/app/puma.sock"), set("webServer.clientMaxBodySize", "10m")),
	} {
		o := obj()
		o.SetNamespace(ns)
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Errorf("%s: refused: %v", name, err)
		}
	}
}

var invalidSites = []invalidCase{
	{"no hostnames", "spec.hostnames", site(set("hostnames", []any{}))},
	{"hostname missing", "spec.hostnames", site(unset("hostnames"))},
	{"hostname in upper case", "spec.hostnames[0]", site(set("hostnames", []any{"WWW.example.com"}))},
	{"hostname with a space", "spec.hostnames[0]", site(set("hostnames", []any{"www.example.com foo"}))},
	{"hostname with a newline", "spec.hostnames[0]", site(set("hostnames", []any{"www.example.com\n}"}))},
	{"hostname of one label", "spec.hostnames[0]", site(set("hostnames", []any{"localhost"}))},
	{"wildcard inside a name", "spec.hostnames[0]", site(set("hostnames", []any{"www.*.example.com"}))},
	{"bare wildcard", "spec.hostnames[0]", site(set("hostnames", []any{"*"}))},
	{"hostname with a port", "spec.hostnames[0]", site(set("hostnames", []any{"www.example.com:80"}))},
	{"hostname listed twice", "spec.hostnames[1]", site(set("hostnames", []any{"www.example.com", "www.example.com"}))},
	{"no farm", "spec.webFarmRef", site(unset("webFarmRef"))},
	{"farm name with a slash", "spec.webFarmRef.name", site(set("webFarmRef.name", "other/farm"))},
	{"tls without a secret", "spec.tls.secretName", site(set("tls.port", int64(443)))},
	{"tls port 0", "spec.tls.port", site(set("tls.secretName", "www-tls"), set("tls.port", int64(0)))},
	{"tls port 70000", "spec.tls.port", site(set("tls.secretName", "www-tls"), set("tls.port", int64(70000)))},
	{"redirect without tls", "spec.redirectToHTTPS", site(set("redirectToHTTPS", true))},
	{"hsts without tls", "spec.hsts", site(set("hsts.maxAgeSeconds", int64(600)))},
	{"hsts max age negative", "spec.hsts.maxAgeSeconds", site(set("tls.secretName", "www-tls"), set("hsts.maxAgeSeconds", int64(-1)))},
	{"preload without subdomains", "spec.hsts.preload", site(set("tls.secretName", "www-tls"), set("hsts.preload", true))},
	{"root and proxy", "spec.webServer", site(set("webServer.proxy.port", int64(3000)))},
	{"neither root nor proxy", "spec.webServer", site(unset("webServer.root"), set("webServer.index", []any{"index.html"}))},
	{"root relative", "spec.webServer.root", site(set("webServer.root", "srv/www"))},
	{"root with ..", "spec.webServer.root", site(set("webServer.root", "/srv/../etc"))},
	{"root with a semicolon", "spec.webServer.root", site(set("webServer.root", "/srv/www; include /etc/passwd"))},
	{"proxy port and socket", "spec.webServer.proxy", site(unset("webServer.root"), set("webServer.proxy.port", int64(3000)), set("webServer.proxy.socket", "/run/a.sock"))},
	{"proxy socket relative", "spec.webServer.proxy.socket", site(unset("webServer.root"), set("webServer.proxy.socket", "run/a.sock"))},
	{"proxy port 0", "spec.webServer.proxy.port", site(unset("webServer.root"), set("webServer.proxy.port", int64(-3)))},
	{"index with a slash", "spec.webServer.index[0]", site(set("webServer.index", []any{"../index.html"}))},
	{"body size in words", "spec.webServer.clientMaxBodySize", site(set("webServer.clientMaxBodySize", "ten megabytes"))},
}

func site(edits ...edit) func() *unstructured.Unstructured {
	return func() *unstructured.Unstructured {
		spec := map[string]any{
			"hostnames":  []any{"www.example.com"},
			"webFarmRef": map[string]any{"name": "webfarm"},
			"webServer":  map[string]any{"root": "/srv/www"},
		}
		return object("Site", spec, edits)
	}
}

// Objects the API server accepted before Sites came (issue 11).
var invalidFarms = []invalidCase{
	{"frontend port is the web port", "spec.frontend.port", webFarm(set("frontend.port", int64(5080)))},
	{"frontend port is the drain port", "spec.frontend.port", webFarm(set("frontend.port", int64(8081)), set("backend.drainPort", int64(8081)))},
	{"unknown selector operator", "spec.frontSelector", webFarm(set("frontSelector.matchExpressions", []any{map[string]any{"key": "role", "operator": "Maybe", "values": []any{"web"}}}))},
	{"preferred node with a space", "spec.preferredNode", failoverIP(set("preferredNode", "front 1"))},
	{"preferred node in upper case", "spec.preferredNode", failoverIP(set("preferredNode", "Front1"))},
}
