package testbed

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/testcerts"
)

// TestE2ESites: the samples' two Sites on the farm, www over HTTPS once
// its Secret exists. Through the VIP, each answers by Host (and SNI) from
// the fronts; plain HTTP redirects; a cookie keeps a browser on its front
// over HTTPS; a drain of the owner moves the address and HTTPS still
// answers from the new owner.
func TestE2ESites(t *testing.T) {
	Skip(t)
	tb := StartT(t, Options{})
	ctx := context.Background()
	if err := tb.WaitReady(ctx, readyTimeout); err != nil {
		t.Fatal(err)
	}
	pair, err := testcerts.Valid("www.example.com", "example.com")
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: SamplesNamespace, Name: "www-example-com-tls"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: pair.Cert, corev1.TLSPrivateKeyKey: pair.Key},
	}
	if err := tb.KubeClient().Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(pair.Leaf)
	browser := SiteClient(roots)

	// The agents read the Secret at their next resync.
	var last string
	err = WaitFor(func() (bool, error) {
		resp, err := Get(ctx, browser, "https://www.example.com/")
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("%d from %q", resp.Status, resp.Front)
		return resp.Status == http.StatusOK && resp.Front != "", nil
	}, changeTimeout)
	if err != nil {
		t.Fatalf("https://www.example.com/ through the VIP never answered from a front: %s", last)
	}
	t.Run("status", func(t *testing.T) {
		var site webfarmv1.Site
		err := WaitFor(func() (bool, error) {
			if err := tb.KubeClient().Get(ctx, client.ObjectKey{Namespace: SamplesNamespace, Name: "www"}, &site); err != nil {
				return false, err
			}
			return meta.IsStatusConditionTrue(site.Status.Conditions, webfarmv1.SiteAccepted) &&
				meta.IsStatusConditionTrue(site.Status.Conditions, webfarmv1.SiteCertificateValid), nil
		}, changeTimeout)
		if err != nil {
			t.Errorf("Site www is not Accepted with a valid certificate: %+v (%v)", site.Status.Conditions, err)
		}
	})
	t.Run("routing, redirect, HSTS", func(t *testing.T) {
		for _, tc := range []struct {
			url, location, hsts string
			status              int
		}{
			{url: "https://www.example.com/", status: 200, hsts: "max-age=31536000"},
			{url: "http://www.example.com/page", status: 301, location: "https://www.example.com/page"},
			{url: "http://shop.example.com/", status: 200},
		} {
			resp, err := Get(ctx, browser, tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tc.status || resp.Header.Get("Location") != tc.location || resp.Header.Get("Strict-Transport-Security") != tc.hsts {
				t.Errorf("%s: %d Location %q HSTS %q; want %d %q %q", tc.url, resp.Status, resp.Header.Get("Location"),
					resp.Header.Get("Strict-Transport-Security"), tc.status, tc.location, tc.hsts)
			}
			if tc.status == 200 && resp.Front == "" {
				t.Errorf("%s: answered by no front", tc.url)
			}
		}
	})
	t.Run("cookie over HTTPS", func(t *testing.T) {
		c := SiteClient(roots)
		c.Jar, _ = cookiejar.New(nil)
		fronts := map[string]int{}
		for range 10 {
			resp, err := Get(ctx, c, "https://www.example.com/")
			if err != nil {
				t.Fatal(err)
			}
			fronts[resp.Front]++
		}
		if len(fronts) != 1 {
			t.Errorf("a browser with its cookie was answered by %v, want one front", fronts)
		}
	})
	t.Run("drain of the owner over HTTPS", func(t *testing.T) {
		owner, err := tb.Owner(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := tb.Drain(owner, true); err != nil {
			t.Fatal(err)
		}
		var next string
		err = WaitFor(func() (bool, error) {
			next, err = tb.Owner(ctx)
			return err == nil && next != "" && next != owner, nil
		}, changeTimeout)
		if err != nil {
			t.Fatalf("the VIP did not leave %s: %v", owner, err)
		}
		start := time.Now()
		err = WaitFor(func() (bool, error) {
			resp, err := Get(ctx, browser, "https://www.example.com/")
			return err == nil && resp.Status == http.StatusOK, nil
		}, changeTimeout)
		if err != nil {
			t.Fatalf("HTTPS through the VIP on %s: %v", next, err)
		}
		t.Logf("the VIP moved from %s to %s; HTTPS answered %v after the move was seen", owner, next, time.Since(start).Round(time.Millisecond))
		if err := tb.Drain(owner, false); err != nil {
			t.Fatal(err)
		}
	})
}
