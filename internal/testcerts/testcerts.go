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
	pair, _, err := create(leafTemplate(notBefore, notAfter, names), nil, nil)
	return pair, err
}

// Valid returns a certificate for names valid from an hour ago for a year.
func Valid(names ...string) (Pair, error) {
	now := time.Now()
	return New(now.Add(-time.Hour), now.Add(365*24*time.Hour), names...)
}

// CA is a certificate authority of a test: its clients trust Pool, and
// it issues certificates as a public one or cert-manager's CA issuer would.
type CA struct {
	Pair
	key *ecdsa.PrivateKey
}

// NewCA returns a CA named name, valid from an hour ago for a year.
func NewCA(name string) (*CA, error) {
	now := time.Now()
	tmpl := leafTemplate(now.Add(-time.Hour), now.Add(365*24*time.Hour), nil)
	tmpl.Subject = pkix.Name{CommonName: name}
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage, tmpl.ExtKeyUsage = x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature, nil
	pair, key, err := create(tmpl, nil, nil)
	if err != nil {
		return nil, err
	}
	return &CA{Pair: pair, key: key}, nil
}

// Issue returns a certificate for names signed by the CA, valid from an
// hour ago for a year; its tls.crt holds the leaf alone.
func (ca *CA) Issue(names ...string) (Pair, error) {
	now := time.Now()
	pair, _, err := create(leafTemplate(now.Add(-time.Hour), now.Add(365*24*time.Hour), names), ca.Leaf, ca.key)
	return pair, err
}

// Pool is a pool holding the CA alone, for clients.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Leaf)
	return pool
}

func leafTemplate(notBefore, notAfter time.Time, names []string) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: firstOr(names, "webfarm test")},
		DNSNames:    names,
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

// create makes a P-256 key and the certificate of tmpl for it, signed by
// parent's key, or by its own when parent is nil.
func create(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (Pair, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Pair{}, nil, err
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62)); err != nil {
		return Pair{}, nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return Pair{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return Pair{}, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Pair{}, nil, err
	}
	return Pair{
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		Leaf: leaf,
	}, key, nil
}

func firstOr(names []string, def string) string {
	if len(names) == 0 {
		return def
	}
	return names[0]
}
