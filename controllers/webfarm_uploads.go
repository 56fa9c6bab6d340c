package controllers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// ensureUploadsSecret creates, once per farm that declares uploads, the
// Secret whose password authenticates its fronts to each other's rsync
// daemon: random, owned by the farm (deleted with it), and never rewritten,
// so that a user may bring their own. secrets reads from the API server:
// the controller watches no Secret.
func ensureUploadsSecret(ctx context.Context, c client.Client, secrets client.Reader, farm *webfarmv1.WebFarm) error {
	if farm.Spec.Uploads == nil {
		return nil
	}
	name := webfarmv1.UploadsSecretName(farm.Name, farm.Spec.Uploads)
	err := secrets.Get(ctx, client.ObjectKey{Namespace: farm.Namespace, Name: name}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		return err
	}
	password := make([]byte, 32)
	if _, err := rand.Read(password); err != nil {
		return err
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: farm.Namespace, Name: name,
			Labels: map[string]string{"app.kubernetes.io/managed-by": ControllerName}},
		Data: map[string][]byte{webfarmv1.UploadsSecretKey: []byte(hex.EncodeToString(password))},
	}
	if err := controllerutil.SetControllerReference(farm, s, c.Scheme()); err != nil {
		return err
	}
	if err := c.Create(ctx, s); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the uploads Secret %s/%s: %w", farm.Namespace, name, err)
	}
	return nil
}

// uploadsCondition is the farm's UploadsInSync condition, from its
// fronts' reports, and when to look again: a change left unsynced turns
// into lag with time alone. Nil without uploads (the condition is removed).
func uploadsCondition(farm *webfarmv1.WebFarm, fronts []webfarmv1.FrontNode, now time.Time) (*metav1.Condition, time.Duration) {
	spec := farm.Spec.Uploads
	if spec == nil {
		return nil, 0
	}
	maxLag := spec.MaxLag.Duration
	if maxLag <= 0 {
		maxLag = 30 * time.Second
	}
	prefix := farmKey(farm.Namespace, farm.Name) + "/"
	var catching, lagging, failing []string
	var recheck time.Duration
	for _, f := range fronts {
		if f.Status.Phase == webfarmv1.FrontDown {
			continue
		}
		for _, u := range f.Status.Uploads {
			if !strings.HasPrefix(u.Name, prefix) && u.Name != strings.TrimSuffix(prefix, "/") {
				continue
			}
			what := f.Name + " " + strings.TrimPrefix(u.Name, prefix)
			switch {
			case u.OldestPendingTime != nil && now.Sub(u.OldestPendingTime.Time) > maxLag:
				lagging = append(lagging, fmt.Sprintf("%s (%s behind)", what, now.Sub(u.OldestPendingTime.Time).Round(time.Second)))
			case !u.CaughtUp:
				catching = append(catching, what)
			case u.LastError != "":
				failing = append(failing, what+": "+u.LastError)
			}
			if u.OldestPendingTime != nil {
				if left := maxLag - now.Sub(u.OldestPendingTime.Time); left > 0 && (recheck == 0 || left < recheck) {
					recheck = left + time.Second
				}
			}
		}
	}
	c := &metav1.Condition{Type: webfarmv1.ConditionUploadsInSync, Status: metav1.ConditionFalse}
	switch {
	case len(lagging) > 0:
		c.Reason, c.Message = webfarmv1.ReasonUploadsLagging, "changes unsynced for longer than maxLag on: "+strings.Join(lagging, ", ")
	case len(catching) > 0:
		c.Reason, c.Message = webfarmv1.ReasonUploadsCatchUp, "catching up, kept in drain: "+strings.Join(catching, ", ")
	case len(failing) > 0:
		c.Reason, c.Message = webfarmv1.ReasonUploadsSyncError, strings.Join(failing, "; ")
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, webfarmv1.ReasonUploadsInSync, "every front's declared directories are caught up"
	}
	return c, recheck
}

// setUploadsCondition sets or removes the UploadsInSync condition.
func setUploadsCondition(st *webfarmv1.WebFarmStatus, c *metav1.Condition, generation int64, now time.Time) {
	if c == nil {
		meta.RemoveStatusCondition(&st.Conditions, webfarmv1.ConditionUploadsInSync)
		return
	}
	setCondition(&st.Conditions, *c, generation, now)
}
