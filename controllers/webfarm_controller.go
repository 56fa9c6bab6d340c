package controllers

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// WebFarmReconciler summarises each WebFarm's fronts and addresses in its
// status, and creates the Secret of its uploads.
type WebFarmReconciler struct {
	*shared
	// secrets reads Secrets from the API server, never through a cache.
	secrets client.Reader
	// written: a reconcile right after a write reads what it wrote.
	written *written[*webfarmv1.WebFarm]
}

// Reconcile writes the status of the WebFarm req names when it changed.
func (r *WebFarmReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	farm := &webfarmv1.WebFarm{}
	if err := r.Get(ctx, req.NamespacedName, farm); err != nil {
		r.written.forget(req.NamespacedName)
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	farm = r.written.fresher(farm)
	if err := ensureUploadsSecret(ctx, r.Client, r.secrets, farm); err != nil {
		return reconcile.Result{}, err
	}
	obs, err := r.observe(ctx, farm)
	if err != nil {
		return reconcile.Result{}, err
	}
	want := webFarmStatus(farm.Status, farm.Generation, obs, r.clock.Now())
	uploads, recheck := uploadsCondition(farm, obs.fronts, r.clock.Now())
	setUploadsCondition(&want, uploads, farm.Generation, r.clock.Now())
	if equality.Semantic.DeepEqual(want, farm.Status) {
		return reconcile.Result{RequeueAfter: recheck}, nil
	}
	// The controller alone writes it: the whole status goes, so that zero
	// counts show as 0 in kubectl get.
	from := farm.ResourceVersion
	farm.Status = want
	if err := r.Status().Update(ctx, farm, client.FieldOwner(ControllerName)); err != nil {
		return reconcile.Result{}, fmt.Errorf("updating the status of WebFarm %s: %w", req, err)
	}
	r.written.record(from, farm)
	return reconcile.Result{RequeueAfter: recheck}, nil
}

func (r *WebFarmReconciler) observe(ctx context.Context, farm *webfarmv1.WebFarm) (farmObservation, error) {
	var obs farmObservation
	_, obs.selectorErr = metav1.LabelSelectorAsSelector(&farm.Spec.FrontSelector)
	fronts, err := r.frontsOfFarm(ctx, farmKey(farm.Namespace, farm.Name))
	if err != nil {
		return obs, err
	}
	obs.fronts = fronts
	obs.names = farm.Spec.FailoverIPs
	if obs.conflict, err = r.farmConflict(ctx, farm); err != nil {
		return obs, err
	}
	for _, name := range farm.Spec.FailoverIPs {
		fip, err := r.failoverIP(ctx, farm.Namespace, name)
		if err != nil {
			return obs, err
		}
		obs.failoverIPs = append(obs.failoverIPs, fip)
	}
	return obs, nil
}

// forFront: a front concerns the farms it serves.
func forFrontFarms(_ context.Context, front *webfarmv1.FrontNode) []reconcile.Request {
	out := make([]reconcile.Request, len(front.Spec.Farms))
	for i, key := range front.Spec.Farms {
		out[i] = request(key)
	}
	return out
}

// frontChangedForFarm: what a farm's status counts of a front.
func frontChangedForFarm(old, new *webfarmv1.FrontNode) bool {
	return !slices.Equal(old.Spec.Farms, new.Spec.Farms) ||
		old.Status.Phase != new.Status.Phase ||
		meta.IsStatusConditionTrue(old.Status.Conditions, ConditionProxyHealthy) != meta.IsStatusConditionTrue(new.Status.Conditions, ConditionProxyHealthy) ||
		!equality.Semantic.DeepEqual(old.Status.Uploads, new.Status.Uploads)
}

// failoverIPChangedForFarm: what a farm's status shows of a FailoverIP.
func failoverIPChangedForFarm(old, new *webfarmv1.FailoverIP) bool {
	return old.Status.Owner != new.Status.Owner || old.Spec.Address != new.Spec.Address
}

func setupWebFarms(mgr ctrl.Manager, s *shared) error {
	r := &WebFarmReconciler{shared: s, secrets: mgr.GetAPIReader(), written: newWritten[*webfarmv1.WebFarm]()}
	c := mgr.GetCache()
	forFailoverIP := func(ctx context.Context, fip *webfarmv1.FailoverIP) []reconcile.Request {
		farms, err := s.farmsListing(ctx, fip.Namespace, fip.Name)
		if err != nil {
			log.FromContext(ctx).Error(err, "Mapping a FailoverIP to its WebFarms")
		}
		out := make([]reconcile.Request, len(farms))
		for i := range farms {
			out[i] = reconcile.Request{NamespacedName: types.NamespacedName{Namespace: farms[i].Namespace, Name: farms[i].Name}}
		}
		return out
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("webfarm").
		WatchesRawSource(watch(c, &webfarmv1.WebFarm{}, farmSpecChanged, byKey[*webfarmv1.WebFarm])).
		WatchesRawSource(watch(c, &webfarmv1.WebFarm{}, farmEndpointsChanged, s.allFarms)).
		WatchesRawSource(watch(c, &webfarmv1.FrontNode{}, frontChangedForFarm, forFrontFarms)).
		WatchesRawSource(watch(c, &webfarmv1.FailoverIP{}, failoverIPChangedForFarm, forFailoverIP)).
		Complete(r)
}
