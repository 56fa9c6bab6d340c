// Package testcerts makes certificates and keys for tests at test time, so
// that no private key is ever committed.
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"time"
)

// Pair is a certificate and its key, PEM-encoded as in a kubernetes.io/tls
// Secret (tls.crt, tls.key).
type Pair struct {
	Cert, Key []byte
	Leaf      *x509.Certificate
}

// New returns a self-signed certificate for names, valid from notBefore to
// notAfter, with a P-256 key.
func New(notBefore, notAfter time.Time, names ...string) (Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Pair{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return Pair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: firstOr(names, "webfarm test")},
		DNSNames:     names,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Pair{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return Pair{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Pair{}, err
	}
	return Pair{
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		Leaf: leaf,
	}, nil
}

// Valid returns a certificate for names valid from an hour ago for a year.
func Valid(names ...string) (Pair, error) {
	now := time.Now()
	return New(now.Add(-time.Hour), now.Add(365*24*time.Hour), names...)
}

func firstOr(names []string, def string) string {
	if len(names) == 0 {
		return def
	}
	return names[0]
}
