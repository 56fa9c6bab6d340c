package controllers

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// Field indexes of the manager's cache, so that watches map an event to the
// objects it concerns without scanning every object.
const (
	// indexFrontFarms: FrontNodes by the farms ("namespace/name") they serve.
	indexFrontFarms = "spec.farms"
	// indexFailoverIPNodes: FailoverIPs by their owner and candidates.
	indexFailoverIPNodes = "status.nodes"
	// indexFarmFailoverIPs: WebFarms by the FailoverIPs they list.
	indexFarmFailoverIPs = "spec.failoverIPs"
)

func addIndexes(mgr manager.Manager) error {
	idx := mgr.GetFieldIndexer()
	ctx := context.Background()
	if err := idx.IndexField(ctx, &webfarmv1.FrontNode{}, indexFrontFarms, func(o client.Object) []string {
		return o.(*webfarmv1.FrontNode).Spec.Farms
	}); err != nil {
		return fmt.Errorf("indexing FrontNodes by %s: %w", indexFrontFarms, err)
	}
	if err := idx.IndexField(ctx, &webfarmv1.FailoverIP{}, indexFailoverIPNodes, func(o client.Object) []string {
		st := o.(*webfarmv1.FailoverIP).Status
		if st.Owner == "" {
			return st.Candidates
		}
		return append([]string{st.Owner}, st.Candidates...)
	}); err != nil {
		return fmt.Errorf("indexing FailoverIPs by %s: %w", indexFailoverIPNodes, err)
	}
	if err := idx.IndexField(ctx, &webfarmv1.WebFarm{}, indexFarmFailoverIPs, func(o client.Object) []string {
		return o.(*webfarmv1.WebFarm).Spec.FailoverIPs
	}); err != nil {
		return fmt.Errorf("indexing WebFarms by %s: %w", indexFarmFailoverIPs, err)
	}
	return nil
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
