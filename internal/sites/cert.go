package sites

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// CertificateError says why a certificate may not be loaded; Reason is one
// of the CertificateValid condition's reasons.
type CertificateError struct {
	Reason string
	Detail string
}

func (e *CertificateError) Error() string { return e.Detail }

func certErr(reason, format string, args ...any) error {
	return &CertificateError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// CheckCertificate checks the tls.crt and tls.key of a kubernetes.io/tls
// Secret for a site with hostnames, at now. It returns the PEM bundle
// HAProxy loads: the certificate, its chain and the key, each re-encoded
// from what was parsed, so that nothing but PEM blocks reaches the file.
func CheckCertificate(certPEM, keyPEM []byte, hostnames []string, now time.Time) ([]byte, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if _, perr := parseChain(certPEM); perr == nil && strings.Contains(err.Error(), "does not match") {
			return nil, certErr(webfarmv1.ReasonKeyMismatch, "tls.key does not match the certificate in tls.crt")
		}
		return nil, certErr(webfarmv1.ReasonCertificateInvalid, "tls.crt and tls.key: %v", err)
	}
	chain, err := parseChain(certPEM)
	if err != nil {
		return nil, certErr(webfarmv1.ReasonCertificateInvalid, "tls.crt: %v", err)
	}
	leaf := chain[0]
	switch {
	case now.After(leaf.NotAfter):
		return nil, certErr(webfarmv1.ReasonCertificateExpired, "the certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return nil, certErr(webfarmv1.ReasonNotYetValid, "the certificate is valid from %s only", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	for _, h := range hostnames {
		if !covers(leaf, h) {
			return nil, certErr(webfarmv1.ReasonHostnameNotCovered, "the certificate does not cover %s (it names %s)", h, strings.Join(leaf.DNSNames, ", "))
		}
	}
	key, err := x509.MarshalPKCS8PrivateKey(pair.PrivateKey)
	if err != nil || !supportedKey(pair.PrivateKey) {
		return nil, certErr(webfarmv1.ReasonCertificateInvalid, "tls.key: unsupported key type %T", pair.PrivateKey)
	}
	var bundle []byte
	for _, c := range chain {
		bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return append(bundle, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})...), nil
}

func supportedKey(k crypto.PrivateKey) bool {
	switch k.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		return true
	}
	return false
}

// parseChain reads every CERTIFICATE block, leaf first; anything else in
// tls.crt is an error.
func parseChain(certPEM []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	rest := certPEM
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("holds a %s block", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("holds no certificate")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, fmt.Errorf("holds text that is not PEM")
	}
	return chain, nil
}

// covers reports whether the certificate serves hostname: an exact name
// through its DNS names (a wildcard name of the certificate included), a
// wildcard hostname only through the same wildcard name.
func covers(c *x509.Certificate, hostname string) bool {
	if strings.HasPrefix(hostname, "*.") {
		for _, n := range c.DNSNames {
			if strings.EqualFold(n, hostname) {
				return true
			}
		}
		return false
	}
	return c.VerifyHostname(hostname) == nil
}
