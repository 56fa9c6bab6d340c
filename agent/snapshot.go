package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// snapshot is what the agent knows of the cluster at one moment, read from its
// informer cache. It stays usable, unchanged, while the API server is away.
//
// Its objects are the cache's own, not copies: the failover loop reads a
// snapshot at every decision, and copying every object each time would cost
// more than the decisions. Nothing may modify them.
type snapshot struct {
	node        string
	self        *webfarmv1.FrontNode             // nil until the controller creates it
	fronts      map[string]*webfarmv1.FrontNode  // by node name
	farms       map[string]*webfarmv1.WebFarm    // by "namespace/name"
	failoverIPs map[string]*webfarmv1.FailoverIP // by "namespace/name"
	sites       map[string]*webfarmv1.Site       // by "namespace/name"
}

// readSnapshot lists the four kinds from r, sharing the objects of a cache
// (see snapshot).
func readSnapshot(ctx context.Context, r client.Reader, node string) (*snapshot, error) {
	var fronts webfarmv1.FrontNodeList
	var farms webfarmv1.WebFarmList
	var fips webfarmv1.FailoverIPList
	var sites webfarmv1.SiteList
	for _, list := range []client.ObjectList{&fronts, &farms, &fips, &sites} {
		err := r.List(ctx, list, client.UnsafeDisableDeepCopy)
		// A cluster whose CRDs predate Sites (helm upgrade leaves CRDs
		// alone) has none: the farms are served as before.
		if list == &sites && meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("listing %T: %w", list, err)
		}
	}
	s := &snapshot{
		node:        node,
		fronts:      make(map[string]*webfarmv1.FrontNode, len(fronts.Items)),
		farms:       make(map[string]*webfarmv1.WebFarm, len(farms.Items)),
		failoverIPs: make(map[string]*webfarmv1.FailoverIP, len(fips.Items)),
		sites:       make(map[string]*webfarmv1.Site, len(sites.Items)),
	}
	for i := range fronts.Items {
		s.fronts[fronts.Items[i].Name] = &fronts.Items[i]
	}
	for i := range farms.Items {
		s.farms[key(&farms.Items[i])] = &farms.Items[i]
	}
	for i := range fips.Items {
		s.failoverIPs[key(&fips.Items[i])] = &fips.Items[i]
	}
	for i := range sites.Items {
		s.sites[key(&sites.Items[i])] = &sites.Items[i]
	}
	s.self = s.fronts[node]
	return s, nil
}

// key is the "namespace/name" the API uses to name farms and failover IPs.
func key(obj client.Object) string { return obj.GetNamespace() + "/" + obj.GetName() }

// farmKeys returns the farms this node is a front of, sorted, that exist.
func (s *snapshot) farmKeys() []string {
	if s.self == nil {
		return nil
	}
	var keys []string
	for _, k := range s.self.Spec.Farms {
		if _, ok := s.farms[k]; ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// frontsOf returns the fronts of a farm, sorted by node name.
func (s *snapshot) frontsOf(farm string) []*webfarmv1.FrontNode {
	var fronts []*webfarmv1.FrontNode
	for _, f := range s.fronts {
		if slices.Contains(f.Spec.Farms, farm) {
			fronts = append(fronts, f)
		}
	}
	slices.SortFunc(fronts, func(a, b *webfarmv1.FrontNode) int { return strings.Compare(a.Name, b.Name) })
	return fronts
}

// frontOfFarmListing tells whether this node is a front of a farm that
// lists fip, or a node that fip's nodeSelector selects (a standalone
// FailoverIP: its FrontNode lists it in spec.failoverIPs).
func (s *snapshot) frontOfFarmListing(fip *webfarmv1.FailoverIP) bool {
	if s.self == nil {
		return false
	}
	if fip.Spec.NodeSelector != nil {
		return slices.Contains(s.self.Spec.FailoverIPs, key(fip))
	}
	return slices.ContainsFunc(s.farmsListing(fip), func(farm string) bool { return slices.Contains(s.self.Spec.Farms, farm) })
}

// peersOf returns the fronts that may hold fip, sorted: every front of the
// farms that list it, or, for a standalone FailoverIP, every node its
// nodeSelector selects.
func (s *snapshot) peersOf(fip *webfarmv1.FailoverIP) []string {
	var names []string
	if fip.Spec.NodeSelector != nil {
		for name, f := range s.fronts {
			if slices.Contains(f.Spec.FailoverIPs, key(fip)) {
				names = append(names, name)
			}
		}
	} else {
		for _, farm := range s.farmsListing(fip) {
			for _, front := range s.frontsOf(farm) {
				names = append(names, front.Name)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// farmsListing returns the farms, as namespace/name, whose spec lists fip;
// none for a standalone FailoverIP, to which a farm adds no front.
func (s *snapshot) farmsListing(fip *webfarmv1.FailoverIP) []string {
	if fip.Spec.NodeSelector != nil {
		return nil
	}
	var farms []string
	for k, farm := range s.farms {
		if farm.Namespace == fip.Namespace && slices.Contains(farm.Spec.FailoverIPs, fip.Name) {
			farms = append(farms, k)
		}
	}
	return farms
}
