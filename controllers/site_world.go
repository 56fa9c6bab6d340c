package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/sites"
)

// readSiteWorld reads every Site, WebFarm and FailoverIP from r. Without
// the Site CRD (helm upgrade leaves CRDs alone) there are no Sites.
func readSiteWorld(ctx context.Context, r client.Reader) (siteWorld, error) {
	var siteList webfarmv1.SiteList
	var farms webfarmv1.WebFarmList
	var fips webfarmv1.FailoverIPList
	var fronts webfarmv1.FrontNodeList
	for _, list := range []client.ObjectList{&siteList, &farms, &fips, &fronts} {
		err := r.List(ctx, list)
		if list == &siteList && meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return siteWorld{}, fmt.Errorf("listing %T: %w", list, err)
		}
	}
	w := siteWorld{farms: map[string]*webfarmv1.WebFarm{}, addresses: map[string]string{}, fronts: map[string][]string{}}
	for _, f := range fronts.Items {
		for _, farm := range f.Spec.Farms {
			w.fronts[farm] = append(w.fronts[farm], f.Name)
		}
	}
	for i := range siteList.Items {
		w.sites = append(w.sites, &siteList.Items[i])
	}
	for i := range farms.Items {
		w.farms[farmKey(farms.Items[i].Namespace, farms.Items[i].Name)] = &farms.Items[i]
	}
	for _, fip := range fips.Items {
		w.addresses[farmKey(fip.Namespace, fip.Name)] = fip.Spec.Address
	}
	return w, nil
}

// farmConflict says why no front serves farm, when a farm without Sites
// claims an address and port that an older one without Sites holds (both
// claim every hostname there); empty when none does.
func (s *shared) farmConflict(ctx context.Context, farm *webfarmv1.WebFarm) (string, error) {
	w, err := readSiteWorld(ctx, s)
	if err != nil {
		return "", err
	}
	key := farmKey(farm.Namespace, farm.Name)
	c, refused := sites.Resolve(sites.Claims(w.farms, w.sites, w.addresses, w.fronts))["WebFarm "+key]
	if !refused {
		return "", nil
	}
	return fmt.Sprintf("WebFarm %s is not served: %s, which came first; give this farm Sites with hostnames, or another address or port", key, c), nil
}

// allFarms: a farm's endpoints may settle or raise a conflict of any other.
func (s *shared) allFarms(ctx context.Context, _ *webfarmv1.WebFarm) []reconcile.Request {
	var list webfarmv1.WebFarmList
	if err := s.List(ctx, &list); err != nil {
		return nil
	}
	out := make([]reconcile.Request, len(list.Items))
	for i := range list.Items {
		out[i] = request(farmKey(list.Items[i].Namespace, list.Items[i].Name))
	}
	return out
}
