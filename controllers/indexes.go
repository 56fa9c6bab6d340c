package controllers

import (
	"context"
	"fmt"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// Field indexes of the manager's cache, so that watches map an event to the
// objects it concerns without scanning every object.
const (
	// indexFrontFarms: FrontNodes by the farms ("namespace/name") they serve.
	indexFrontFarms = "spec.farms"
	// indexFrontFailoverIPs: FrontNodes by the standalone FailoverIPs
	// ("namespace/name") that select them.
	indexFrontFailoverIPs = "spec.failoverIPs"
	// indexFailoverIPNodes: FailoverIPs by the nodes their status concerns
	// (nodesOf).
	indexFailoverIPNodes = "status.nodes"
	// indexFarmFailoverIPs: WebFarms by the FailoverIPs they list.
	indexFarmFailoverIPs = "spec.failoverIPs"
	// indexFailoverIPAddress: FailoverIPs by their address, canonical.
	indexFailoverIPAddress = "spec.address"
	// indexSiteSecret: Sites by the Secret of their certificate, in their
	// own namespace.
	indexSiteSecret = "spec.tls.secretName"
)

func addIndexes(mgr manager.Manager) error {
	idx := mgr.GetFieldIndexer()
	ctx := context.Background()
	if err := idx.IndexField(ctx, &webfarmv1.FrontNode{}, indexFrontFarms, func(o client.Object) []string {
		return o.(*webfarmv1.FrontNode).Spec.Farms
	}); err != nil {
		return fmt.Errorf("indexing FrontNodes by %s: %w", indexFrontFarms, err)
	}
	if err := idx.IndexField(ctx, &webfarmv1.FrontNode{}, indexFrontFailoverIPs, func(o client.Object) []string {
		return o.(*webfarmv1.FrontNode).Spec.FailoverIPs
	}); err != nil {
		return fmt.Errorf("indexing FrontNodes by %s: %w", indexFrontFailoverIPs, err)
	}
	if err := idx.IndexField(ctx, &webfarmv1.FailoverIP{}, indexFailoverIPNodes, func(o client.Object) []string {
		return nodesOf(o.(*webfarmv1.FailoverIP).Status)
	}); err != nil {
		return fmt.Errorf("indexing FailoverIPs by %s: %w", indexFailoverIPNodes, err)
	}
	if err := idx.IndexField(ctx, &webfarmv1.FailoverIP{}, indexFailoverIPAddress, func(o client.Object) []string {
		return []string{canonicalAddress(o.(*webfarmv1.FailoverIP).Spec.Address)}
	}); err != nil {
		return fmt.Errorf("indexing FailoverIPs by %s: %w", indexFailoverIPAddress, err)
	}
	if err := idx.IndexField(ctx, &webfarmv1.WebFarm{}, indexFarmFailoverIPs, func(o client.Object) []string {
		return o.(*webfarmv1.WebFarm).Spec.FailoverIPs
	}); err != nil {
		return fmt.Errorf("indexing WebFarms by %s: %w", indexFarmFailoverIPs, err)
	}
	return nil
}

// indexSites indexes the Sites, apart from the other kinds: a cluster
// whose CRDs predate Sites has none to index.
func indexSites(mgr manager.Manager) error {
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &webfarmv1.Site{}, indexSiteSecret, func(o client.Object) []string {
		if tls := o.(*webfarmv1.Site).Spec.TLS; tls != nil {
			return []string{tls.SecretName}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("indexing Sites by %s: %w", indexSiteSecret, err)
	}
	return nil
}

// nodesOf are, sorted, the nodes a FailoverIP's status concerns: its
// owner, its candidates, the voters of its epoch (kept through a
// withdrawal: their reports may prove it), and a previous owner that has
// yet to be shown to have removed the address taken away from it.
func nodesOf(st webfarmv1.FailoverIPStatus) []string {
	nodes := slices.Concat(st.Candidates, st.Voters)
	if st.Owner != "" {
		nodes = append(nodes, st.Owner)
	}
	if unproven(ownershipOf(st)) {
		nodes = append(nodes, st.PreviousOwner)
	}
	slices.Sort(nodes)
	return slices.Compact(nodes)
}

// failoverIPsWithAddress lists the FailoverIPs of every namespace whose
// address is address, however spelled.
func (s *shared) failoverIPsWithAddress(ctx context.Context, address string) ([]webfarmv1.FailoverIP, error) {
	var list webfarmv1.FailoverIPList
	if err := s.List(ctx, &list, client.MatchingFields{indexFailoverIPAddress: canonicalAddress(address)}); err != nil {
		return nil, fmt.Errorf("listing the FailoverIPs of address %s: %w", address, err)
	}
	return list.Items, nil
}

// frontsOfFarm lists the FrontNodes serving farm ("namespace/name").
func (s *shared) frontsOfFarm(ctx context.Context, farm string) ([]webfarmv1.FrontNode, error) {
	var list webfarmv1.FrontNodeList
	if err := s.List(ctx, &list, client.MatchingFields{indexFrontFarms: farm}); err != nil {
		return nil, fmt.Errorf("listing the fronts of farm %s: %w", farm, err)
	}
	return list.Items, nil
}

// farmsListing lists the WebFarms of namespace that list FailoverIP name.
func (s *shared) farmsListing(ctx context.Context, namespace, name string) ([]webfarmv1.WebFarm, error) {
	var list webfarmv1.WebFarmList
	if err := s.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{indexFarmFailoverIPs: name}); err != nil {
		return nil, fmt.Errorf("listing the WebFarms of %s that list FailoverIP %s: %w", namespace, name, err)
	}
	return list.Items, nil
}

// failoverIPsOfNode lists the FailoverIPs that node owns or may hold.
func (s *shared) failoverIPsOfNode(ctx context.Context, node string) ([]webfarmv1.FailoverIP, error) {
	var list webfarmv1.FailoverIPList
	if err := s.List(ctx, &list, client.MatchingFields{indexFailoverIPNodes: node}); err != nil {
		return nil, fmt.Errorf("listing the FailoverIPs of node %s: %w", node, err)
	}
	return list.Items, nil
}
