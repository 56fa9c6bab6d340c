package testcerts

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
)

// TestCAIssue: a certificate the CA issues verifies against its pool for
// its names only, and matches its key; a self-signed one does not verify.
func TestCAIssue(t *testing.T) {
	ca, err := NewCA("webfarm test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("www.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(leaf.Cert, leaf.Key); err != nil {
		t.Errorf("the issued certificate does not match its key: %v", err)
	}
	self, err := Valid("www.example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		host string
		ok   bool
	}{
		{"issued, its name", leaf.Leaf, "www.example.com", true},
		{"issued, another name", leaf.Leaf, "shop.example.com", false},
		{"self-signed", self.Leaf, "www.example.com", false},
	} {
		_, err := tc.cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: tc.host})
		if (err == nil) != tc.ok {
			t.Errorf("%s: verify error %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
