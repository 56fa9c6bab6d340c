package testbed

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// OwnerLinkDown: the owner's data link goes down while its path to the API
// server stays up (issue 9). Its agent finds that it cannot serve, reports
// it, and the address moves as in a planned hand-off, where it used to stay
// on the dead link forever.
func OwnerLinkDown(ctx context.Context, tb *Testbed) (*Result, error) {
	r := newResult("owner link down")
	owner, err := tb.Owner(ctx)
	if err != nil {
		return r, err
	}
	f := tb.Front(owner)
	if f == nil {
		return r, fmt.Errorf("FailoverIP %s has no owner", FailoverIPName)
	}
	tb.say("\n== %s (the owner) loses its data link; its path to the API server stays up", owner)
	gap, next, err := tb.measureMove(ctx, r, owner, f.Down)
	if err != nil {
		_ = f.Up()
		return r, err
	}
	r.figure("link-gap", "client-visible gap, "+owner+" link down", gap)
	tb.say("   the VIP moved to %s; clients saw a gap of %s", next, round(gap))
	reason, err := tb.servingReason(ctx, owner)
	if err != nil {
		_ = f.Up()
		return r, err
	}
	tb.say("   FrontNode %s reports status.serving: %s", owner, reason)
	if err := r.check(reason == webfarmv1.ServingReasonLinkDown, owner+" reports why it does not serve", "%s", reason); err != nil {
		_ = f.Up()
		return r, err
	}
	if err := f.Up(); err != nil {
		return r, err
	}
	return r, tb.WaitReady(ctx, readyTimeout)
}

// servingReason is the reason node's agent gives for serving the VIP or not.
func (tb *Testbed) servingReason(ctx context.Context, node string) (string, error) {
	var front webfarmv1.FrontNode
	if err := tb.KubeClient().Get(ctx, client.ObjectKey{Name: node}, &front); err != nil {
		return "", err
	}
	for _, s := range front.Status.Serving {
		if s.Name == SamplesNamespace+"/"+FailoverIPName {
			return s.Reason, nil
		}
	}
	return "no report", nil
}
