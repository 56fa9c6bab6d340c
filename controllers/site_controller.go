package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/sites"
)

// How often the certificate of an HTTPS site is read again. Where the
// controller watches Secrets (Options.SecretNamespaces), a change reaches
// the status at once and the recheck only catches an expiry. Elsewhere a
// renewal or an expiry shows within siteRecheck, and a missing or refused
// one, which its user is likely fixing, is looked at again sooner.
const (
	siteRecheck        = 5 * time.Minute
	siteRecheckRefused = 10 * time.Second
)

// SiteReconciler reports, in each Site's status, whether its names are its
// own on its addresses and ports (a conflict lands on the newcomer) and
// whether its certificate can be loaded.
type SiteReconciler struct {
	*shared
	// secrets reads Secrets from the API server, never through a cache:
	// the cache holds their metadata alone.
	secrets client.Reader
	// watched are the namespaces whose Secrets wake the Sites naming them.
	watched map[string]bool
	// written: a reconcile right after a write reads what it wrote.
	written *written[*webfarmv1.Site]
}

// Reconcile writes the status of the Site req names when it changed.
func (r *SiteReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	site := &webfarmv1.Site{}
	if err := r.Get(ctx, req.NamespacedName, site); err != nil {
		r.written.forget(req.NamespacedName)
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	site = r.written.fresher(site)
	world, err := r.siteWorld(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	refused := sites.Resolve(sites.Claims(world.farms, world.sites, world.addresses, world.fronts))
	certErr := r.checkCertificate(ctx, site)
	fronts, vhost, err := r.frontsServing(ctx, site)
	if err != nil {
		return reconcile.Result{}, err
	}
	now := metav1.NewTime(r.clock.Now())
	want := siteStatus(site, world, refused, certErr, now)
	want.FrontsServing = fronts
	vhost.ObservedGeneration, vhost.LastTransitionTime = site.Generation, now
	meta.SetStatusCondition(&want.Conditions, vhost)
	result := reconcile.Result{}
	switch {
	case site.Spec.TLS != nil && certErr != nil && !r.watched[site.Namespace]:
		result.RequeueAfter = siteRecheckRefused
	case site.Spec.TLS != nil:
		result.RequeueAfter = siteRecheck
	}
	if equality.Semantic.DeepEqual(want, site.Status) {
		return result, nil
	}
	from := site.ResourceVersion
	site.Status = want
	if err := r.Status().Update(ctx, site, client.FieldOwner(ControllerName)); err != nil {
		return reconcile.Result{}, fmt.Errorf("updating the status of Site %s: %w", req, err)
	}
	r.written.record(from, site)
	return result, nil
}

// frontsServing lists the fronts, whose reports say where the site is
// live and whether nginx refused its vhost.
func (r *SiteReconciler) frontsServing(ctx context.Context, site *webfarmv1.Site) (int32, metav1.Condition, error) {
	var fronts webfarmv1.FrontNodeList
	if err := r.List(ctx, &fronts); err != nil {
		return 0, metav1.Condition{}, fmt.Errorf("listing FrontNodes: %w", err)
	}
	live, c := siteFronts(site, fronts.Items)
	return live, c, nil
}

// checkCertificate reads and checks the site's certificate: nil when it
// has none or a valid one.
func (r *SiteReconciler) checkCertificate(ctx context.Context, site *webfarmv1.Site) error {
	if site.Spec.TLS == nil {
		return nil
	}
	var secret corev1.Secret
	key := types.NamespacedName{Namespace: site.Namespace, Name: site.Spec.TLS.SecretName}
	if err := r.secrets.Get(ctx, key, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("Secret %s does not exist", key)
		}
		return fmt.Errorf("reading Secret %s: %w", key, err)
	}
	_, err := sites.CheckCertificate(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey], sites.Hostnames(site), r.clock.Now())
	return err
}

// siteWorld reads every Site, WebFarm and FailoverIP from the cache.
func (r *SiteReconciler) siteWorld(ctx context.Context) (siteWorld, error) {
	return readSiteWorld(ctx, r)
}

// allSites: whatever changes one site's claims or its farm's endpoints may
// settle or raise a conflict of any other site.
func (r *SiteReconciler) allSites(ctx context.Context, _ client.Object) []reconcile.Request {
	var list webfarmv1.SiteList
	if err := r.List(ctx, &list); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing the Sites")
		return nil
	}
	out := make([]reconcile.Request, len(list.Items))
	for i := range list.Items {
		out[i] = reconcile.Request{NamespacedName: types.NamespacedName{Namespace: list.Items[i].Namespace, Name: list.Items[i].Name}}
	}
	return out
}

// sitesOfSecret: a Secret concerns the Sites of its namespace that name
// it for their certificate.
func (r *SiteReconciler) sitesOfSecret(ctx context.Context, secret client.Object) []reconcile.Request {
	var list webfarmv1.SiteList
	err := r.List(ctx, &list, client.InNamespace(secret.GetNamespace()), client.MatchingFields{indexSiteSecret: secret.GetName()})
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing the Sites of a Secret", "secret", klog.KObj(secret))
		return nil
	}
	out := make([]reconcile.Request, len(list.Items))
	for i := range list.Items {
		out[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
	}
	return out
}

func siteSpecChanged(old, new *webfarmv1.Site) bool { return old.Generation != new.Generation }

// frontSitesChanged: what a Site's status counts of a front.
func frontSitesChanged(old, new *webfarmv1.FrontNode) bool {
	return !equality.Semantic.DeepEqual(old.Status.Sites, new.Status.Sites)
}

// sitesOfFront: a front's report concerns the sites it names.
func sitesOfFront(_ context.Context, f *webfarmv1.FrontNode) []reconcile.Request {
	out := make([]reconcile.Request, len(f.Status.Sites))
	for i, s := range f.Status.Sites {
		out[i] = request(s.Name)
	}
	return out
}

func farmEndpointsChanged(old, new *webfarmv1.WebFarm) bool {
	return sites.FarmPort(old) != sites.FarmPort(new) || !equality.Semantic.DeepEqual(old.Spec.FailoverIPs, new.Spec.FailoverIPs)
}

func failoverAddressChanged(old, new *webfarmv1.FailoverIP) bool {
	return old.Spec.Address != new.Spec.Address
}

func setupSites(mgr ctrl.Manager, s *shared, secretNamespaces []string) error {
	// A cluster whose CRDs predate Sites (helm upgrade leaves CRDs alone)
	// runs everything else; the Site controller waits for a restart.
	gk := schema.GroupKind{Group: webfarmv1.GroupVersion.Group, Kind: "Site"}
	if _, err := mgr.GetRESTMapper().RESTMapping(gk, webfarmv1.GroupVersion.Version); meta.IsNoMatchError(err) {
		mgr.GetLogger().Info("The Site CRD is not installed: Sites are not reconciled until the controller restarts after it is")
		return nil
	}
	if err := indexSites(mgr); err != nil {
		return err
	}
	r := &SiteReconciler{shared: s, secrets: mgr.GetAPIReader(), watched: map[string]bool{}, written: newWritten[*webfarmv1.Site]()}
	c := mgr.GetCache()
	b := ctrl.NewControllerManagedBy(mgr).
		Named("site").
		WatchesRawSource(watch(c, &webfarmv1.Site{}, siteSpecChanged, func(ctx context.Context, o *webfarmv1.Site) []reconcile.Request { return r.allSites(ctx, o) })).
		WatchesRawSource(watch(c, &webfarmv1.WebFarm{}, farmEndpointsChanged, func(ctx context.Context, o *webfarmv1.WebFarm) []reconcile.Request { return r.allSites(ctx, o) })).
		WatchesRawSource(watch(c, &webfarmv1.FrontNode{}, frontSitesChanged, sitesOfFront)).
		WatchesRawSource(watch(c, &webfarmv1.FailoverIP{}, failoverAddressChanged, func(ctx context.Context, o *webfarmv1.FailoverIP) []reconcile.Request { return r.allSites(ctx, o) }))
	if len(secretNamespaces) > 0 {
		// Metadata only: the cache never holds a key, and any change of the
		// Secret (a renewal by cert-manager) bumps its resourceVersion.
		b = b.WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.sitesOfSecret))
		for _, ns := range secretNamespaces {
			r.watched[ns] = true
		}
	}
	return b.Complete(r)
}
