package controllers

import (
	"context"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

// watch maps events on objects like obj to the requests they concern: on
// create and delete, those of the object; on an update that relevant says
// matters, those of the old and of the new object, so that a request the
// change removes is reconciled too.
func watch[T client.Object](c cache.Cache, obj T, relevant func(old, new T) bool, requests func(context.Context, T) []reconcile.Request) source.Source {
	add := func(ctx context.Context, o T, q queue) {
		for _, r := range requests(ctx, o) {
			q.Add(r)
		}
	}
	return source.Kind(c, obj, handler.TypedFuncs[T, reconcile.Request]{
		CreateFunc: func(ctx context.Context, e event.TypedCreateEvent[T], q queue) { add(ctx, e.Object, q) },
		DeleteFunc: func(ctx context.Context, e event.TypedDeleteEvent[T], q queue) { add(ctx, e.Object, q) },
		UpdateFunc: func(ctx context.Context, e event.TypedUpdateEvent[T], q queue) {
			if relevant(e.ObjectOld, e.ObjectNew) {
				add(ctx, e.ObjectOld, q)
				add(ctx, e.ObjectNew, q)
			}
		},
	})
}

// watchLeases feeds the heartbeat tracker from the nodes' Leases and maps a
// sighting that may change a node's freshness to requests, and every
// sighting to the requests of every (nil: none). Only a renewal by the
// node's own agent is a sighting (leaseRenewal); any other change of the
// Lease is ignored. A routine renewal enqueues only every's: the wake-up
// set at the instant the heartbeat would turn stale finds it renewed.
func (s *shared) watchLeases(c cache.Cache, requests, every func(context.Context, string) []reconcile.Request) source.Source {
	sighted := func(ctx context.Context, l *coordinationv1.Lease, deleted bool, q queue) {
		node, ok := nodeOfLease(l.Name)
		if !ok || l.Namespace != s.namespace {
			return
		}
		version := ""
		if !deleted {
			if version, ok = leaseRenewal(l, node); !ok {
				return
			}
		}
		s.tracker.Observe(node, version)
		if every != nil {
			for _, r := range every(ctx, node) {
				q.Add(r)
			}
		}
		if !s.tracker.Revived(node, s.deadtimes.get(node)) {
			return
		}
		for _, r := range requests(ctx, node) {
			q.Add(r)
		}
	}
	return source.Kind(c, &coordinationv1.Lease{}, handler.TypedFuncs[*coordinationv1.Lease, reconcile.Request]{
		CreateFunc: func(ctx context.Context, e event.TypedCreateEvent[*coordinationv1.Lease], q queue) {
			sighted(ctx, e.Object, false, q)
		},
		UpdateFunc: func(ctx context.Context, e event.TypedUpdateEvent[*coordinationv1.Lease], q queue) {
			sighted(ctx, e.ObjectNew, false, q)
		},
		DeleteFunc: func(ctx context.Context, e event.TypedDeleteEvent[*coordinationv1.Lease], q queue) {
			sighted(ctx, e.Object, true, q)
		},
	})
}

// request names a cluster-scoped object, or a namespaced one as "ns/name".
func request(key string) reconcile.Request {
	ns, name, found := strings.Cut(key, "/")
	if !found {
		return reconcile.Request{NamespacedName: types.NamespacedName{Name: key}}
	}
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}

func nodeRequest(node string) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: node}}}
}
