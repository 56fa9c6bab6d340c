package controllers

import (
	"encoding/hex"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// TestEnvtestUploads: a farm that declares uploads gets its Secret, random
// and owned by the farm, and an UploadsInSync condition that follows its
// fronts' reports.
func TestEnvtestUploads(t *testing.T) {
	h := startHarness(t)
	ns := "uploads"
	h.createNamespace(ns)
	h.createNode("up1", "10.0.9.1", map[string]string{"role": "up"})
	farm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": webfarmv1.GroupVersion.String(), "kind": "WebFarm",
		"metadata": map[string]any{"namespace": ns, "name": "web"},
		"spec": map[string]any{
			"frontSelector": map[string]any{"matchLabels": map[string]any{"role": "up"}},
			"uploads":       map[string]any{"directories": []any{map[string]any{"name": "media", "path": "/srv/media"}}},
		},
	}}
	if err := h.c.Create(h.ctx, farm); err != nil {
		t.Fatal(err)
	}

	var secret corev1.Secret
	eventually(t, "the uploads Secret", func() error {
		if err := h.c.Get(h.ctx, client.ObjectKey{Namespace: ns, Name: "web-uploads"}, &secret); err != nil {
			return err
		}
		if _, err := hex.DecodeString(string(secret.Data[webfarmv1.UploadsSecretKey])); err != nil || len(secret.Data[webfarmv1.UploadsSecretKey]) != 64 {
			return fmt.Errorf("password %q: not 32 random bytes in hex", secret.Data[webfarmv1.UploadsSecretKey])
		}
		return nil
	})
	if owner := metav1.GetControllerOf(&secret); owner == nil || owner.Kind != "WebFarm" || owner.Name != "web" {
		t.Errorf("the Secret's controller is %+v, want the WebFarm", owner)
	}

	h.front("up1", "created", func(*webfarmv1.FrontNode) error { return nil })
	condition := func(reason string) func() error {
		return func() error {
			h.renew("up1")
			var wf webfarmv1.WebFarm
			if err := h.c.Get(h.ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &wf); err != nil {
				return err
			}
			c := meta.FindStatusCondition(wf.Status.Conditions, webfarmv1.ConditionUploadsInSync)
			if c == nil || c.Reason != reason {
				return fmt.Errorf("UploadsInSync %+v, want reason %s", c, reason)
			}
			return nil
		}
	}
	h.patchFrontStatus("up1", map[string]any{"uploads": []any{map[string]any{"name": "uploads/web/media", "caughtUp": false}}})
	eventually(t, "CatchingUp while the front catches up", condition(webfarmv1.ReasonUploadsCatchUp))
	h.patchFrontStatus("up1", map[string]any{"uploads": []any{map[string]any{"name": "uploads/web/media", "caughtUp": true}}})
	eventually(t, "InSync once it has", condition(webfarmv1.ReasonUploadsInSync))

	// The password is never rewritten: the fronts share it.
	var again corev1.Secret
	if err := h.c.Get(h.ctx, client.ObjectKey{Namespace: ns, Name: "web-uploads"}, &again); err != nil {
		t.Fatal(err)
	}
	if string(again.Data[webfarmv1.UploadsSecretKey]) != string(secret.Data[webfarmv1.UploadsSecretKey]) {
		t.Error("the uploads password changed")
	}
}
