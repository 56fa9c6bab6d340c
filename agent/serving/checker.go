package serving

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// Probes are the node effects a round of checks uses.
type Probes interface {
	// Proxy checks the HAProxy frontend on port of this node.
	Proxy(ctx context.Context, port int32) error
	// Link checks the link named, or the one holding nodeAddr when name is
	// empty.
	Link(name string, nodeAddr netip.Addr) error
	// Ping checks that target answers an echo request.
	Ping(ctx context.Context, target netip.Addr) error
}

// NodeProbes are the real probes.
type NodeProbes struct {
	ProxyProbe *ProxyProbe
	LinkProbe  LinkProbe
	Pinger     *Pinger
}

func (p NodeProbes) Proxy(ctx context.Context, port int32) error {
	return p.ProxyProbe.Check(ctx, port)
}
func (p NodeProbes) Link(name string, addr netip.Addr) error { return p.LinkProbe.Check(name, addr) }
func (p NodeProbes) Ping(ctx context.Context, t netip.Addr) error {
	return p.Pinger.Ping(ctx, t)
}

// Target is one FailoverIP this node may hold, and what serving it takes.
type Target struct {
	// Name is the FailoverIP as "namespace/name".
	Name string
	// Ports are the frontend ports of the farms that list the FailoverIP
	// and that this node is a front of.
	Ports []int32
	// Link is spec.interface; empty for the link holding NodeAddress.
	Link        string
	NodeAddress netip.Addr
	PingTargets []netip.Addr
}

// Checker runs rounds of checks and keeps a Tracker per FailoverIP. It is
// used by one goroutine.
type Checker struct {
	Probes     Probes
	Rise, Fall int
	// Timeout bounds each round: every probe of a round runs at once.
	Timeout time.Duration

	trackers map[string]*Tracker
	verdicts map[string]Verdict
}

// Round checks targets once at now and returns the verdicts sorted by name,
// and whether any changed, appeared or went since the last round.
func (c *Checker) Round(ctx context.Context, targets []Target, now time.Time) ([]webfarmv1.ServingStatus, bool) {
	if c.trackers == nil {
		c.trackers, c.verdicts = map[string]*Tracker{}, map[string]Verdict{}
	}
	res := c.probe(ctx, targets)
	changed := false
	seen := make(map[string]bool, len(targets))
	for _, t := range targets {
		seen[t.Name] = true
		tr := c.trackers[t.Name]
		if tr == nil {
			tr = &Tracker{Rise: c.Rise, Fall: c.Fall}
			c.trackers[t.Name] = tr
			changed = true
		}
		v, ch := tr.Observe(Evaluate(res.observation(t)), now)
		c.verdicts[t.Name] = v
		changed = changed || ch
	}
	for name := range c.trackers {
		if !seen[name] {
			delete(c.trackers, name)
			delete(c.verdicts, name)
			changed = true
		}
	}
	return c.statuses(), changed
}

func (c *Checker) statuses() []webfarmv1.ServingStatus {
	out := make([]webfarmv1.ServingStatus, 0, len(c.verdicts))
	for name, v := range c.verdicts {
		since := metav1.NewTime(v.Since)
		out = append(out, webfarmv1.ServingStatus{Name: name, Serving: v.Serving, Reason: v.Reason, Message: v.Message, LastTransitionTime: &since})
	}
	slices.SortFunc(out, func(a, b webfarmv1.ServingStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// results are the probes of one round, each run once however many
// FailoverIPs share it.
type results struct {
	proxy map[int32]error
	link  map[linkKey]error
	ping  map[netip.Addr]error
}

type linkKey struct {
	name string
	addr netip.Addr
}

func (r results) observation(t Target) Observation {
	o := Observation{Link: r.link[linkKey{t.Link, t.NodeAddress}], Proxy: make(map[int32]error, len(t.Ports))}
	for _, p := range t.Ports {
		o.Proxy[p] = r.proxy[p]
	}
	for _, a := range t.PingTargets {
		o.Pings = append(o.Pings, r.ping[a])
	}
	return o
}

// probe runs the probes targets need: links in turn (one netlink socket),
// the network probes all at once under one timeout.
func (c *Checker) probe(ctx context.Context, targets []Target) results {
	r := results{proxy: map[int32]error{}, link: map[linkKey]error{}, ping: map[netip.Addr]error{}}
	var ports []int32
	var addrs []netip.Addr
	for _, t := range targets {
		k := linkKey{t.Link, t.NodeAddress}
		if _, done := r.link[k]; !done {
			r.link[k] = c.Probes.Link(t.Link, t.NodeAddress)
		}
		ports = append(ports, t.Ports...)
		addrs = append(addrs, t.PingTargets...)
	}
	ports, addrs = uniq(ports), uniq(addrs)
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	proxyErrs, pingErrs := make([]error, len(ports)), make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, port := range ports {
		wg.Go(func() { proxyErrs[i] = c.Probes.Proxy(ctx, port) })
	}
	for i, addr := range addrs {
		wg.Go(func() { pingErrs[i] = c.Probes.Ping(ctx, addr) })
	}
	wg.Wait()
	for i, port := range ports {
		r.proxy[port] = proxyErrs[i]
	}
	for i, addr := range addrs {
		r.ping[addr] = pingErrs[i]
	}
	return r
}

func uniq[T interface{ comparable }](s []T) []T {
	seen := make(map[T]bool, len(s))
	out := s[:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// Run runs a round every interval until ctx is done, on the targets that
// targets returns at that moment, and hands the verdicts to report whenever
// they change.
func (c *Checker) Run(ctx context.Context, clk clock.WithTicker, interval time.Duration, targets func() []Target, report func([]webfarmv1.ServingStatus)) {
	tick := clk.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
			if st, changed := c.Round(ctx, targets(), clk.Now()); changed {
				report(st)
			}
		}
	}
}
