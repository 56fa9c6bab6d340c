package controllers

import (
	"context"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// failoverIPWatches map events to the FailoverIPs whose election they may
// change.
type failoverIPWatches struct{ *shared }

// byKey: a namespaced object concerns itself.
func byKey[T client.Object](_ context.Context, o T) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}}}
}

// forFarm: the FailoverIPs a farm lists have its fronts as candidates.
func (w *failoverIPWatches) forFarm(_ context.Context, farm *webfarmv1.WebFarm) []reconcile.Request {
	out := make([]reconcile.Request, len(farm.Spec.FailoverIPs))
	for i, name := range farm.Spec.FailoverIPs {
		out[i] = reconcile.Request{NamespacedName: types.NamespacedName{Namespace: farm.Namespace, Name: name}}
	}
	return out
}

// forFront: a front concerns the FailoverIPs of its farms, and those it owns
// or may hold.
func (w *failoverIPWatches) forFront(ctx context.Context, front *webfarmv1.FrontNode) []reconcile.Request {
	return append(w.forNodeInFarms(ctx, front.Name, front.Spec.Farms), selectedBy(front)...)
}

// selectedBy: the standalone FailoverIPs that select a node have it among
// their fronts.
func selectedBy(front *webfarmv1.FrontNode) []reconcile.Request {
	var out []reconcile.Request
	for _, key := range front.Spec.FailoverIPs {
		if ns, name, ok := strings.Cut(key, "/"); ok {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
		}
	}
	return out
}

// forNode: a Node's labels may match a FailoverIP's frontSelector.
func (w *failoverIPWatches) forNode(ctx context.Context, node *corev1.Node) []reconcile.Request {
	return w.forNodeName(ctx, node.Name)
}

// forNodeName: a node's heartbeat concerns the FailoverIPs of its front's
// farms, and those it owns or may hold.
// ownedBy maps a renewal of node's Lease to the FailoverIPs node owns: their
// status acknowledges the renewal (status.ownerRenewal), which the owner
// needs before the renewal proves anything to it.
func (w *failoverIPWatches) ownedBy(ctx context.Context, node string) []reconcile.Request {
	fips, err := w.failoverIPsOfNode(ctx, node)
	if err != nil {
		log.FromContext(ctx).Error(err, "Mapping a Lease renewal to the FailoverIPs its node owns")
	}
	var out []reconcile.Request
	for i := range fips {
		if fips[i].Status.Owner == node {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: fips[i].Namespace, Name: fips[i].Name}})
		}
	}
	return out
}

func (w *failoverIPWatches) forNodeName(ctx context.Context, node string) []reconcile.Request {
	front, err := w.frontNode(ctx, node)
	if err != nil {
		log.FromContext(ctx).Error(err, "Mapping a node to its FailoverIPs")
	}
	if front == nil {
		return w.forNodeInFarms(ctx, node, nil)
	}
	return w.forFront(ctx, front)
}

func (w *failoverIPWatches) forNodeInFarms(ctx context.Context, node string, farmKeys []string) []reconcile.Request {
	var out []reconcile.Request
	for _, key := range farmKeys {
		farm, err := w.farm(ctx, key)
		if err != nil || farm == nil {
			continue
		}
		out = append(out, w.forFarm(ctx, farm)...)
	}
	fips, err := w.failoverIPsOfNode(ctx, node)
	if err != nil {
		log.FromContext(ctx).Error(err, "Mapping a node to its FailoverIPs")
	}
	for i := range fips {
		out = append(out, byKey(ctx, &fips[i])...)
	}
	return out
}

// failoverIPSpecChanged: its spec, or the start of its deletion.
func failoverIPSpecChanged(old, new *webfarmv1.FailoverIP) bool {
	return old.Generation != new.Generation || old.DeletionTimestamp.IsZero() != new.DeletionTimestamp.IsZero()
}

// forSameAddress: a FailoverIP that appears, goes, starts being deleted or
// changes may start or end a conflict with the others of its address.
func (w *failoverIPWatches) forSameAddress(ctx context.Context, o client.Object) []reconcile.Request {
	fip, ok := o.(*webfarmv1.FailoverIP)
	if !ok {
		return nil
	}
	others, err := w.failoverIPsWithAddress(ctx, fip.Spec.Address)
	if err != nil {
		log.FromContext(ctx).Error(err, "Mapping a FailoverIP to those of the same address")
	}
	var out []reconcile.Request
	for i := range others {
		if others[i].UID != fip.UID {
			out = append(out, byKey(ctx, &others[i])...)
		}
	}
	return out
}

// sameAddressChanged passes the events that may start or end a conflict;
// creations and deletions always pass.
var sameAddressChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		old, okOld := e.ObjectOld.(*webfarmv1.FailoverIP)
		new, okNew := e.ObjectNew.(*webfarmv1.FailoverIP)
		return okOld && okNew && failoverIPSpecChanged(old, new)
	},
}

// frontChangedForElection: what Elect reads of a front — its farms, drain,
// graceful shutdown, reports of the addresses, serving verdicts and the
// peers it does not hear — or its phase, which turns Down as its heartbeat
// goes stale.
func frontChangedForElection(old, new *webfarmv1.FrontNode) bool {
	return !slices.Equal(old.Spec.Farms, new.Spec.Farms) ||
		!slices.Equal(old.Spec.FailoverIPs, new.Spec.FailoverIPs) ||
		!checksEqual(old.Status.Checks, new.Status.Checks) ||
		!equality.Semantic.DeepEqual(old.Status.Hooks, new.Status.Hooks) ||
		old.Spec.DrainRequested != new.Spec.DrainRequested ||
		old.Status.ShuttingDown != new.Status.ShuttingDown ||
		old.Status.Phase != new.Status.Phase ||
		!equality.Semantic.DeepEqual(old.Status.FailoverIPs, new.Status.FailoverIPs) ||
		!servingEqual(old.Status.Serving, new.Status.Serving) ||
		!slices.Equal(old.Status.UnheardFronts, new.Status.UnheardFronts)
}

func nodeLabelsChanged(old, new *corev1.Node) bool { return !maps.Equal(old.Labels, new.Labels) }

// servingEqual compares serving verdicts, not their messages or times.
func servingEqual(a, b []webfarmv1.ServingStatus) bool {
	return slices.EqualFunc(a, b, func(x, y webfarmv1.ServingStatus) bool { return x.Name == y.Name && x.Serving == y.Serving })
}

// checksEqual compares the checks' states, not their messages or times.
func checksEqual(a, b []webfarmv1.NodeChecksStatus) bool {
	return slices.EqualFunc(a, b, func(x, y webfarmv1.NodeChecksStatus) bool {
		return x.Name == y.Name && x.State == y.State && slices.EqualFunc(x.Checks, y.Checks, func(p, q webfarmv1.CheckResult) bool { return p.Name == q.Name && p.State == q.State })
	})
}
