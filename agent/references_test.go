package agent

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func TestReferencesKeepLastReadDuringOutage(t *testing.T) {
	ctx := context.Background()
	outage := false
	api := fake.NewClientBuilder().WithScheme(scheme.Scheme).
		WithObjects(&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "stats"},
			Data:       map[string][]byte{"username": []byte("admin")},
		}).
		WithInterceptorFuncs(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if outage {
				return errors.New("connection refused")
			}
			return c.Get(ctx, key, obj, opts...)
		}}).Build()
	refs := newReferences(api)
	if _, err := refs.secret(ctx, "default", "stats"); err != nil {
		t.Fatal(err)
	}
	outage = true
	refs.forget()
	data, err := refs.secret(ctx, "default", "stats")
	if err != nil || string(data["username"]) != "admin" {
		t.Fatalf("during an outage: %q, %v; want the last read data", data, err)
	}
	if _, err := refs.configMap(ctx, "default", "pages"); err == nil {
		t.Fatal("a never-read ConfigMap was made up during an outage")
	}
}

func TestReferencesNotFoundNamesTheObject(t *testing.T) {
	refs := newReferences(fake.NewClientBuilder().WithScheme(scheme.Scheme).Build())
	_, err := refs.configMap(context.Background(), "shop", "pages")
	if err == nil || !strings.Contains(err.Error(), "ConfigMap shop/pages not found") {
		t.Fatalf("error %v; want it to name ConfigMap shop/pages", err)
	}
}

// TestReferencesForgetSecret: a changed Secret is read again at its next
// look-up; the others are still served from what was read this resync.
func TestReferencesForgetSecret(t *testing.T) {
	ctx := context.Background()
	gets := map[string]int{}
	api := fake.NewClientBuilder().WithScheme(scheme.Scheme).
		WithObjects(
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "www-tls"}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "stats"}},
		).
		WithInterceptorFuncs(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			gets[key.Name]++
			return c.Get(ctx, key, obj, opts...)
		}}).Build()
	refs := newReferences(api)
	for range 2 {
		for _, name := range []string{"www-tls", "stats"} {
			if _, err := refs.secret(ctx, "shop", name); err != nil {
				t.Fatal(err)
			}
		}
	}
	refs.forgetSecret(types.NamespacedName{Namespace: "shop", Name: "www-tls"})
	for _, name := range []string{"www-tls", "stats"} {
		if _, err := refs.secret(ctx, "shop", name); err != nil {
			t.Fatal(err)
		}
	}
	if gets["www-tls"] != 2 || gets["stats"] != 1 {
		t.Errorf("reads %v; want www-tls read again after forgetSecret, stats once", gets)
	}
}
