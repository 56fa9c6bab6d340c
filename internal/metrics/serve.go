package metrics

import (
	"crypto/tls"
	"flag"

	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// HAProxyPath is where the agent's metrics endpoint serves HAProxy's own
// exporter, behind the same authentication and authorization as /metrics:
// HAProxy cannot check a Kubernetes token itself.
const HAProxyPath = "/metrics/haproxy"

// Serving is how a binary serves its metrics, as kubebuilder v4 scaffolds
// it: over HTTPS, every request authenticated by the API server
// (TokenReview) and authorized by it (SubjectAccessReview of a get on the
// path, a non-resource URL), unless Secure is off.
type Serving struct {
	// Secure turns on HTTPS and the API server's authentication and
	// authorization.
	Secure bool
	// CertDir holds tls.crt and tls.key (e.g. a cert-manager Secret);
	// empty or missing files: a self-signed certificate made at start.
	CertDir string
}

// BindFlags registers --metrics-secure and --metrics-cert-dir.
func (s *Serving) BindFlags(fs *flag.FlagSet) {
	fs.BoolVar(&s.Secure, "metrics-secure", true, "serve metrics over HTTPS to clients the API server authenticates and authorizes (get on the non-resource URL); false serves plain HTTP to anyone")
	fs.StringVar(&s.CertDir, "metrics-cert-dir", "", "directory with tls.crt and tls.key for the metrics endpoint; empty: a self-signed certificate")
}

// Options returns the metrics server options of a manager serving on addr.
func (s Serving) Options(addr string) metricsserver.Options {
	o := metricsserver.Options{BindAddress: addr}
	if !s.Secure {
		return o
	}
	o.SecureServing = true
	o.FilterProvider = filters.WithAuthenticationAndAuthorization
	o.CertDir = s.CertDir
	// HTTP/1.1 only, as kubebuilder scaffolds: HTTP/2 exposes the endpoint
	// to the stream-cancellation floods of CVE-2023-44487 and CVE-2023-39325.
	o.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	return o
}
