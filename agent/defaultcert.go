package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// defaultCertLifetime is how long the node's default certificate is made
// for. No client trusts it: it only answers handshakes whose SNI names no
// site, so it need not be renewed often.
const defaultCertLifetime = 10 * 365 * 24 * time.Hour

// defaultCertificate returns the certificate an HTTPS frontend presents
// when the SNI names none of its sites: self-signed, made once per node and
// kept in the state dir (mode 0600) so that HAProxy's configuration stays
// the same across agent restarts.
func (a *Agent) defaultCertificate() ([]byte, error) {
	if a.proxyState.defaultCert != nil {
		return a.proxyState.defaultCert, nil
	}
	path := filepath.Join(a.opts.StateDir, "default-cert.pem")
	if pem, err := os.ReadFile(path); err == nil && usableBundle(pem, a.clock.Now()) {
		a.proxyState.defaultCert = pem
		return pem, nil
	}
	bundle, err := newDefaultCertificate(a.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("making the default certificate: %w", err)
	}
	if err := writeBytesAtomic(path, bundle); err != nil {
		return nil, fmt.Errorf("writing the default certificate: %w", err)
	}
	a.proxyState.defaultCert = bundle
	return bundle, nil
}

func usableBundle(bundle []byte, now time.Time) bool {
	pair, err := tls.X509KeyPair(bundle, bundle)
	if err != nil {
		return false
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	return err == nil && now.Before(leaf.NotAfter)
}

func newDefaultCertificate(now time.Time) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "webfarm default"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(defaultCertLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...), nil
}
