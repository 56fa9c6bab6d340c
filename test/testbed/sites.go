package testbed

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The samples' Sites on the testbed (config/samples/webfarm_v1alpha1_site.yaml).
const (
	// SecureSite is served over HTTPS with the certificate of SecureSecret,
	// plain HTTP redirecting to it, with HSTS.
	SecureSite, SecureHost, SecureSecret = "www", "www.example.com", "www-example-com-tls"
	// PlainSite is served over plain HTTP.
	PlainSite, PlainHost = "shop", "shop.example.com"
)

// SiteBody is what the document root of a sample Site answers at /
// (without its line break, as Response.Body).
func SiteBody(site string) string { return "site " + site }

// sitesDir holds the document roots of the samples' Sites, shared by every
// front (they share the file system): which front answered is in X-Front.
func sitesDir(dir string) string { return filepath.Join(dir, "sites") }

// serveSiteFromTestbed gives a sample Site a document root in the
// testbed's directory, with an index naming the site: the samples' roots
// are the host's, and the shop's application does not run here, so nginx
// serves its files instead.
func serveSiteFromTestbed(site *unstructured.Unstructured, dir string) error {
	root := filepath.Join(sitesDir(dir), site.GetName())
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte(SiteBody(site.GetName())+"\n"), 0o644); err != nil {
		return err
	}
	web, _, err := unstructured.NestedMap(site.Object, "spec", "webServer")
	if err != nil || web == nil {
		return fmt.Errorf("Site %s: no spec.webServer to serve from %s (%v)", site.GetName(), root, err)
	}
	delete(web, "proxy")
	web["root"] = root
	return unstructured.SetNestedMap(site.Object, web, "spec", "webServer")
}
