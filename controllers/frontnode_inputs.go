package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// What a front's status is judged from, beyond its own FrontNode: the
// FailoverIPs whose deadtime judges its heartbeat, and the proxies whose
// reports count its sessions.

// failoverIPsOfFront lists the FailoverIPs the front may hold: those its
// farms list whose frontSelector, if any, matches the node, and the
// standalone ones that select it.
func (r *FrontNodeReconciler) failoverIPsOfFront(ctx context.Context, node *corev1.Node, farmKeys, standaloneKeys []string) ([]webfarmv1.FailoverIP, error) {
	var out []webfarmv1.FailoverIP
	for _, key := range standaloneKeys {
		ns, name, _ := strings.Cut(key, "/")
		fip, err := r.failoverIP(ctx, ns, name)
		if err != nil {
			return nil, err
		}
		if fip != nil {
			out = append(out, *fip)
		}
	}
	for _, key := range farmKeys {
		farm, err := r.farm(ctx, key)
		if err != nil || farm == nil {
			return nil, err
		}
		for _, name := range farm.Spec.FailoverIPs {
			fip, err := r.failoverIP(ctx, farm.Namespace, name)
			if err != nil {
				return nil, err
			}
			if fip != nil && selectorMatches(fip.Spec.FrontSelector, node.Labels) {
				out = append(out, *fip)
			}
		}
	}
	return out, nil
}

// activeProxies returns, for each farm, the proxies whose sessions count:
// the owners of its FailoverIPs, or every front of a farm without any.
func (r *FrontNodeReconciler) activeProxies(ctx context.Context, farmKeys []string, farms []webfarmv1.WebFarm) ([]farmProxies, error) {
	var out []farmProxies
	for _, key := range farmKeys {
		i := slices.IndexFunc(farms, func(f webfarmv1.WebFarm) bool { return farmKey(f.Namespace, f.Name) == key })
		if i < 0 {
			continue
		}
		proxies, err := r.proxiesOf(ctx, &farms[i])
		if err != nil {
			return nil, err
		}
		out = append(out, farmProxies{farm: key, proxies: proxies})
	}
	return out, nil
}

func (r *FrontNodeReconciler) proxiesOf(ctx context.Context, farm *webfarmv1.WebFarm) ([]*webfarmv1.FrontNode, error) {
	if len(farm.Spec.FailoverIPs) == 0 {
		fronts, err := r.frontsOfFarm(ctx, farmKey(farm.Namespace, farm.Name))
		if err != nil {
			return nil, err
		}
		out := make([]*webfarmv1.FrontNode, len(fronts))
		for i := range fronts {
			out[i] = &fronts[i]
		}
		return out, nil
	}
	var out []*webfarmv1.FrontNode
	for _, name := range farm.Spec.FailoverIPs {
		fip, err := r.failoverIP(ctx, farm.Namespace, name)
		if err != nil {
			return nil, err
		}
		if fip == nil || fip.Status.Owner == "" {
			continue
		}
		owner := &webfarmv1.FrontNode{}
		if err := r.Get(ctx, types.NamespacedName{Name: fip.Status.Owner}, owner); client.IgnoreNotFound(err) != nil {
			return nil, fmt.Errorf("getting FrontNode %s, owner of %s/%s: %w", fip.Status.Owner, farm.Namespace, name, err)
		} else if err == nil {
			out = append(out, owner)
		}
	}
	return out, nil
}
