package controllers

import (
	"context"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// frontNodeWatches map events to FrontNode requests, which name Nodes.
type frontNodeWatches struct{ *shared }

// byName: a Node, or its FrontNode, concerns the FrontNode of that name.
func byName[T client.Object](_ context.Context, o T) []reconcile.Request {
	return nodeRequest(o.GetName())
}

// forFrontServers: the servers a proxy reports set the sessions of the
// fronts of its farms — when it is an active proxy of that farm.
func (w *frontNodeWatches) forFrontServers(ctx context.Context, proxy *webfarmv1.FrontNode) []reconcile.Request {
	var out []reconcile.Request
	for _, key := range proxy.Spec.Farms {
		farm, err := w.farm(ctx, key)
		if err != nil || farm == nil || !w.isActiveProxy(ctx, farm, proxy.Name) {
			continue
		}
		out = append(out, w.frontsOf(ctx, key)...)
	}
	return out
}

func (w *frontNodeWatches) isActiveProxy(ctx context.Context, farm *webfarmv1.WebFarm, node string) bool {
	if len(farm.Spec.FailoverIPs) == 0 {
		return true
	}
	for _, name := range farm.Spec.FailoverIPs {
		if fip, err := w.failoverIP(ctx, farm.Namespace, name); err == nil && fip != nil && fip.Status.Owner == node {
			return true
		}
	}
	return false
}

// forFarm: a farm concerns the Nodes its selector matches and the fronts
// that serve it now (those its old selector matched).
func (w *frontNodeWatches) forFarm(ctx context.Context, farm *webfarmv1.WebFarm) []reconcile.Request {
	out := w.frontsOf(ctx, farmKey(farm.Namespace, farm.Name))
	return append(out, w.nodesMatching(ctx, &farm.Spec.FrontSelector)...)
}

// nodesMatching: the Nodes a selector matches; none for an invalid one.
func (w *frontNodeWatches) nodesMatching(ctx context.Context, selector *metav1.LabelSelector) []reconcile.Request {
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return nil
	}
	var nodes corev1.NodeList
	if err := w.List(ctx, &nodes, client.MatchingLabelsSelector{Selector: sel}); err != nil {
		log.FromContext(ctx).Error(err, "Listing the Nodes a selector matches", "selector", sel.String())
		return nil
	}
	var out []reconcile.Request
	for i := range nodes.Items {
		out = append(out, nodeRequest(nodes.Items[i].Name)...)
	}
	return out
}

// forFailoverIP: a FailoverIP's owner is the active proxy, and its deadtime
// judges the fronts, of the farms that list it; a standalone one selects
// nodes itself. The fronts whose reports it awaits keep their FrontNode
// until it no longer does (it is gone, with its farms).
func (w *frontNodeWatches) forFailoverIP(ctx context.Context, fip *webfarmv1.FailoverIP) []reconcile.Request {
	var out []reconcile.Request
	for _, node := range nodesOf(fip.Status) {
		out = append(out, nodeRequest(node)...)
	}
	if fip.Spec.NodeSelector != nil {
		return append(out, w.selectedBy(ctx, fip)...)
	}
	farms, err := w.farmsListing(ctx, fip.Namespace, fip.Name)
	if err != nil {
		log.FromContext(ctx).Error(err, "Mapping a FailoverIP to its fronts")
		return out
	}
	for i := range farms {
		out = append(out, w.frontsOf(ctx, farmKey(farms[i].Namespace, farms[i].Name))...)
	}
	return out
}

func (w *frontNodeWatches) frontsOf(ctx context.Context, farm string) []reconcile.Request {
	fronts, err := w.frontsOfFarm(ctx, farm)
	if err != nil {
		log.FromContext(ctx).Error(err, "Mapping a farm to its fronts")
		return nil
	}
	out := make([]reconcile.Request, len(fronts))
	for i := range fronts {
		out[i] = nodeRequest(fronts[i].Name)[0]
	}
	return out
}

// nodeChanged: what a FrontNode takes from its Node — labels, the drain
// annotation, addresses. Node status heartbeats change none of them.
func nodeChanged(old, new *corev1.Node) bool {
	return !maps.Equal(old.Labels, new.Labels) ||
		old.Annotations[webfarmv1.DrainAnnotation] != new.Annotations[webfarmv1.DrainAnnotation] ||
		!slices.Equal(old.Status.Addresses, new.Status.Addresses)
}

// frontChangedForItself: its spec, or the proxy state its agent reports,
// which sets its ProxyHealthy condition.
func frontChangedForItself(old, new *webfarmv1.FrontNode) bool {
	return old.Generation != new.Generation || !equality.Semantic.DeepEqual(old.Status.Proxy, new.Status.Proxy)
}

func frontServersChanged(old, new *webfarmv1.FrontNode) bool {
	return !equality.Semantic.DeepEqual(old.Status.Servers, new.Status.Servers)
}

func farmSpecChanged(old, new *webfarmv1.WebFarm) bool { return old.Generation != new.Generation }

// failoverIPChangedForFronts: its spec (deadtime, selector), its owner,
// the active proxy, or the fronts whose reports it awaits.
func failoverIPChangedForFronts(old, new *webfarmv1.FailoverIP) bool {
	return old.Generation != new.Generation || old.Status.Owner != new.Status.Owner ||
		!slices.Equal(nodesOf(old.Status), nodesOf(new.Status))
}

// selectedBy: the nodes a standalone FailoverIP's selector matches, and
// those it selected so far.
func (w *frontNodeWatches) selectedBy(ctx context.Context, fip *webfarmv1.FailoverIP) []reconcile.Request {
	var out []reconcile.Request
	fronts, err := w.frontsOfFailoverIP(ctx, farmKey(fip.Namespace, fip.Name))
	if err != nil {
		log.FromContext(ctx).Error(err, "Mapping a FailoverIP to its nodes")
	}
	for i := range fronts {
		out = append(out, nodeRequest(fronts[i].Name)...)
	}
	return append(out, w.nodesMatching(ctx, fip.Spec.NodeSelector)...)
}
