package agent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"

	"github.com/webfarm/webfarm/agent/serving"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// servingChecks decides, beside the other loops, whether this node can serve
// each FailoverIP it may hold, and puts the verdicts in the report. The node
// loop sets its targets at each sync; the checks read them at each round, so
// neither waits for the other, and the failover loop waits for neither.
type servingChecks struct {
	checker *serving.Checker
	targets atomic.Pointer[[]serving.Target]
}

func newServingChecks() (*servingChecks, error) {
	// A handle of its own: a netlink handle is not for concurrent use, and
	// the address manager's serves the failover loop.
	handle, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	probes := serving.NodeProbes{
		ProxyProbe: serving.NewProxyProbe(nil),
		LinkProbe:  serving.LinkProbe{Handle: handle},
		Pinger:     serving.NewPinger(nil),
	}
	c := &serving.Checker{Probes: probes, Rise: webfarmv1.ServingRise, Fall: webfarmv1.ServingFall, Timeout: webfarmv1.ServingCheckTimeout}
	return &servingChecks{checker: c}, nil
}

// runServingChecks runs the checks until ctx is done.
func (a *Agent) runServingChecks(ctx context.Context) {
	targets := func() []serving.Target {
		if t := a.serving.targets.Load(); t != nil {
			return *t
		}
		return nil
	}
	a.serving.checker.Run(ctx, a.clock, webfarmv1.ServingCheckInterval, targets, func(st []webfarmv1.ServingStatus) {
		a.reporter.update(func(r *report) { r.Serving = st })
		a.publishSoon()
	})
}

// setServingTargets gives the checks the FailoverIPs of snap this node may
// hold.
func (a *Agent) setServingTargets(ctx context.Context, snap *snapshot) {
	targets, problems := servingTargets(snap)
	for _, p := range problems {
		logr.FromContextOrDiscard(ctx).Error(p, "Skipping a serving check")
	}
	a.serving.targets.Store(&targets)
}

// servingTargets lists the FailoverIPs listed by the farms this node is a
// front of, each with the frontend ports of those farms.
func servingTargets(snap *snapshot) ([]serving.Target, []error) {
	if snap.self == nil {
		return nil, nil
	}
	node, err := netip.ParseAddr(snap.self.Spec.Address)
	if err != nil {
		return nil, []error{fmt.Errorf("FrontNode %s: spec.address: %w", snap.node, err)}
	}
	byName := map[string]*serving.Target{}
	var problems []error
	for _, farmKey := range snap.farmKeys() {
		farm := snap.farms[farmKey]
		for _, name := range farm.Spec.FailoverIPs {
			fipKey := farm.Namespace + "/" + name
			fip := snap.failoverIPs[fipKey]
			if fip == nil {
				continue
			}
			t := byName[fipKey]
			if t == nil {
				if t, err = servingTarget(fipKey, fip, node); err != nil {
					problems = append(problems, err)
					continue
				}
				byName[fipKey] = t
			}
			if port := farm.Spec.Frontend.Port; port > 0 && !slices.Contains(t.Ports, port) {
				t.Ports = append(t.Ports, port)
			}
		}
	}
	out := make([]serving.Target, 0, len(byName))
	for _, t := range byName {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b serving.Target) int { return strings.Compare(a.Name, b.Name) })
	return out, problems
}

func servingTarget(key string, fip *webfarmv1.FailoverIP, node netip.Addr) (*serving.Target, error) {
	t := &serving.Target{Name: key, Link: fip.Spec.Interface, NodeAddress: node}
	for _, s := range fip.Spec.PingTargets {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("FailoverIP %s: spec.pingTargets: %w", key, err)
		}
		t.PingTargets = append(t.PingTargets, a)
	}
	return t, nil
}
