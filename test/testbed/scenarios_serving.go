package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// OwnerLinkDown: the owner's data link goes down while its path to the API
// server stays up (issue 9). Its agent finds that it cannot serve, reports
// it, and the address moves as in a planned hand-off, where it used to stay
// on the dead link forever.
func OwnerLinkDown(ctx context.Context, tb *Testbed) (*Result, error) {
	r := newResult("owner link down")
	_, f, err := tb.ownerFront(ctx)
	if err != nil {
		return r, err
	}
	owner := f.Name
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

// OwnerProxyDead: the owner's HAProxy is killed and cannot start again,
// its frontend port taken by a process that accepts and never answers
// (issue 9). Its agent finds that it cannot serve, and the address moves as
// in a planned hand-off.
func OwnerProxyDead(ctx context.Context, tb *Testbed) (*Result, error) {
	r := newResult("owner HAProxy dead")
	_, f, err := tb.ownerFront(ctx)
	if err != nil {
		return r, err
	}
	owner := f.Name
	tb.say("\n== %s (the owner): HAProxy killed, its port 80 taken so that it cannot start again", owner)
	var squatter net.Listener
	defer func() {
		if squatter != nil {
			_ = squatter.Close()
		}
	}()
	gap, next, err := tb.measureMove(ctx, r, owner, func() (err error) {
		squatter, err = f.squatFrontend(frontendPort)
		return err
	})
	if err != nil {
		return r, err
	}
	r.figure("proxy-gap", "client-visible gap, "+owner+" HAProxy dead", gap)
	tb.say("   the VIP moved to %s; clients saw a gap of %s", next, round(gap))
	reason, err := tb.servingReason(ctx, owner)
	if err != nil {
		return r, err
	}
	tb.say("   FrontNode %s reports status.serving: %s", owner, reason)
	if err := r.check(reason == webfarmv1.ServingReasonProxyNotAnswering, owner+" reports why it does not serve", "%s", reason); err != nil {
		return r, err
	}
	_ = squatter.Close()
	squatter = nil
	return r, tb.WaitReady(ctx, readyTimeout)
}

// frontendPort is the sample farm's frontend port.
const frontendPort = 80

// squatFrontend kills the front's HAProxy and listens on its frontend port
// in its place, retrying while the agent restarts HAProxy first.
func (f *Front) squatFrontend(port int) (net.Listener, error) {
	var l net.Listener
	deadline := time.Now().Add(changeTimeout)
	for {
		if _, err := killWhere(f.Namespace, func(comm string) bool { return comm == "haproxy" }); err != nil {
			return nil, err
		}
		err := ns(f.Namespace).Do(func() (err error) {
			l, err = net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", port))
			return err
		})
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return nil, fmt.Errorf("taking port %d in %s: %w", port, f.Namespace, err)
		}
	}
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
