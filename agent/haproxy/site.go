package haproxy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Site is one website of a farm, with its certificate checked and read.
type Site struct {
	// Key is the Site's "namespace/name".
	Key string
	// Farm is the key of the Farm that serves it; it must be in the Config.
	Farm string
	// Hostnames are lower-case DNS names, or "*.<name>" for one more label.
	Hostnames []string
	// TLSPort, when not 0, serves the site over HTTPS on the farm's
	// addresses, with Certificate.
	TLSPort int32
	// Certificate is the PEM bundle HAProxy loads for the site: the
	// certificate, its chain and its key (see internal/sites).
	Certificate []byte
	// RedirectToHTTPS answers plain HTTP with a 301 to HTTPS.
	RedirectToHTTPS bool
	// HSTS, when set, adds Strict-Transport-Security to HTTPS answers.
	HSTS *HSTS
}

// HSTS is the Strict-Transport-Security header of a site.
type HSTS struct {
	MaxAgeSeconds     int64
	IncludeSubDomains bool
	Preload           bool
}

// sitePlan is a site whose every field has been checked.
type sitePlan struct {
	key, backend   string
	exact, wild    []string
	tlsPort        int32
	certFile       string
	redirect, hsts string // the redirect's location and the header's value; empty for none
}

// TLS settings of every HTTPS frontend: Mozilla's "intermediate"
// configuration for HAProxy 2.6 (ssl-config.mozilla.org, guideline 5.7),
// HTTP/2 through ALPN, and no session tickets, whose keys would be shared
// by no front.
const (
	tlsCiphers      = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
	tlsCipherSuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
	tlsOptions      = "prefer-client-ciphers no-sslv3 no-tlsv10 no-tlsv11 no-tls-tickets"
	alpn            = "h2,http/1.1"
	// certsDir holds the certificates and the crt-lists, beside errors/.
	certsDir = "certs"
	// DefaultCertFile is the certificate a client gets when its SNI names
	// no site of the frontend (or it sends none).
	defaultCertFile = certsDir + "/default.pem"
)

// certFile is where a site's certificate bundle is written.
func certFile(siteKey string) string {
	return certsDir + "/site_" + strings.Replace(siteKey, "/", "_", 1) + ".pem"
}

func planSites(sites []Site, farms map[string]*farmPlan) ([]sitePlan, error) {
	plans := make([]sitePlan, 0, len(sites))
	for _, s := range sites {
		p, err := planSite(s, farms)
		if err != nil {
			return nil, fmt.Errorf("site %s: %w", quoteKey(s.Key), err)
		}
		plans = append(plans, p)
	}
	slices.SortFunc(plans, func(a, b sitePlan) int { return strings.Compare(a.key, b.key) })
	for i := 1; i < len(plans); i++ {
		if plans[i-1].key == plans[i].key {
			return nil, fmt.Errorf("site %s: listed twice", plans[i].key)
		}
	}
	return plans, nil
}

func planSite(s Site, farms map[string]*farmPlan) (sitePlan, error) {
	if !validFarmKey(s.Key) {
		return sitePlan{}, fmt.Errorf("key: must be <namespace>/<name> of DNS names")
	}
	farm, ok := farms[s.Farm]
	if !ok {
		return sitePlan{}, fmt.Errorf("spec.webFarmRef: farm %s is not served here", quoteKey(s.Farm))
	}
	p := sitePlan{key: s.Key, backend: farm.name, tlsPort: s.TLSPort}
	if len(s.Hostnames) == 0 {
		return p, fmt.Errorf("spec.hostnames: none")
	}
	for i, h := range s.Hostnames {
		if !validHostname(h) {
			return p, fmt.Errorf("spec.hostnames[%d] %q: must be a lower-case DNS name of two labels or more, or *.<name>", i, h)
		}
		if strings.HasPrefix(h, "*.") {
			p.wild = append(p.wild, h)
		} else {
			p.exact = append(p.exact, h)
		}
	}
	slices.Sort(p.exact)
	slices.Sort(p.wild)
	p.exact, p.wild = slices.Compact(p.exact), slices.Compact(p.wild)
	if s.TLSPort == 0 {
		if s.RedirectToHTTPS || s.HSTS != nil {
			return p, fmt.Errorf("spec.redirectToHTTPS, spec.hsts: need spec.tls")
		}
		return p, nil
	}
	return p, planSiteTLS(&p, s, farm)
}

func planSiteTLS(p *sitePlan, s Site, farm *farmPlan) error {
	if err := inRange("spec.tls.port", s.TLSPort, 1, 65535); err != nil {
		return err
	}
	if s.TLSPort == farm.port {
		return fmt.Errorf("spec.tls.port %d: is the farm's plain HTTP port", s.TLSPort)
	}
	if len(s.Certificate) == 0 {
		return fmt.Errorf("spec.tls.secretName: no certificate")
	}
	p.certFile = certFile(s.Key)
	if s.RedirectToHTTPS {
		port := ""
		if s.TLSPort != 443 {
			port = fmt.Sprintf(":%d", s.TLSPort)
		}
		// The host is one of the site's names: the rule applies only when
		// it matched them.
		p.redirect = "https://%[var(txn.host)]" + port + "%[pathq]"
	}
	if h := s.HSTS; h != nil {
		if h.MaxAgeSeconds < 0 || h.MaxAgeSeconds > 63072000 {
			return fmt.Errorf("spec.hsts.maxAgeSeconds %d: must be between 0 and 63072000", h.MaxAgeSeconds)
		}
		p.hsts = fmt.Sprintf("max-age=%d", h.MaxAgeSeconds)
		if h.IncludeSubDomains {
			p.hsts += "; includeSubDomains"
		}
		if h.Preload {
			p.hsts += "; preload"
		}
	}
	return nil
}

// validHostname: lower-case labels of letters, digits and inner '-', at
// least two, optionally after "*.". Only [a-z0-9.*-] can reach the
// configuration.
func validHostname(h string) bool {
	name := strings.TrimPrefix(h, "*.")
	if len(name) > 253 || !strings.Contains(name, ".") {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if len(label) > 63 || !isDNSName(label, 63, false) {
			return false
		}
	}
	return true
}

// hostRegex matches the one-label names a wildcard hostname covers.
func hostRegex(wild string) string {
	return `^[^.]+` + strings.ReplaceAll(strings.TrimPrefix(wild, "*"), ".", `\.`) + `$`
}

// checkAddress accepts a failover address HAProxy can bind.
func checkAddress(field string, a netip.Addr) error {
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.Zone() != "" || a.Is4In6() {
		return fmt.Errorf("%s %q: must be a unicast address without zone", field, a)
	}
	return nil
}
