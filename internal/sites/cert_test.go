package sites

import (
	"errors"
	"strings"
	"testing"
	"time"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/testcerts"
)

func TestCheckCertificate(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	mk := func(from, to time.Time, names ...string) testcerts.Pair {
		t.Helper()
		p, err := testcerts.New(from, to, names...)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	year := 365 * 24 * time.Hour
	good := mk(now.Add(-time.Hour), now.Add(year), "www.example.com", "*.example.org")
	other := mk(now.Add(-time.Hour), now.Add(year), "www.example.com")
	expired := mk(now.Add(-2*year), now.Add(-time.Minute), "www.example.com")
	future := mk(now.Add(time.Hour), now.Add(year), "www.example.com")
	for _, tc := range []struct {
		name      string
		cert, key []byte
		hosts     []string
		reason    string // empty: valid
	}{
		{"valid", good.Cert, good.Key, []string{"www.example.com"}, ""},
		{"valid, a host under its wildcard", good.Cert, good.Key, []string{"shop.example.org"}, ""},
		{"valid, the same wildcard", good.Cert, good.Key, []string{"*.example.org"}, ""},
		{"key of another certificate", good.Cert, other.Key, []string{"www.example.com"}, webfarmv1.ReasonKeyMismatch},
		{"expired", expired.Cert, expired.Key, []string{"www.example.com"}, webfarmv1.ReasonCertificateExpired},
		{"not yet valid", future.Cert, future.Key, []string{"www.example.com"}, webfarmv1.ReasonNotYetValid},
		{"a hostname not covered", good.Cert, good.Key, []string{"www.example.com", "blog.example.com"}, webfarmv1.ReasonHostnameNotCovered},
		{"two labels under a wildcard", good.Cert, good.Key, []string{"a.b.example.org"}, webfarmv1.ReasonHostnameNotCovered},
		{"a wildcard hostname, a narrower certificate", other.Cert, other.Key, []string{"*.example.com"}, webfarmv1.ReasonHostnameNotCovered},
		{"not PEM", []byte("hello"), good.Key, []string{"www.example.com"}, webfarmv1.ReasonCertificateInvalid},
		{"no key", good.Cert, nil, []string{"www.example.com"}, webfarmv1.ReasonCertificateInvalid},
		{"text after the certificate", append(append([]byte{}, good.Cert...), "\nglobal\n"...), good.Key, []string{"www.example.com"}, webfarmv1.ReasonCertificateInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bundle, err := CheckCertificate(tc.cert, tc.key, tc.hosts, now)
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(bundle), "BEGIN CERTIFICATE") || !strings.Contains(string(bundle), "BEGIN PRIVATE KEY") {
					t.Fatalf("bundle lacks the certificate or the key:\n%s", bundle)
				}
				return
			}
			var ce *CertificateError
			if !errors.As(err, &ce) || ce.Reason != tc.reason {
				t.Fatalf("got %v, want reason %s", err, tc.reason)
			}
			t.Log(err)
		})
	}
}
