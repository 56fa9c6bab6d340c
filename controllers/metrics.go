package controllers

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/metrics"
)

// collectTimeout bounds the cache reads of one scrape.
const collectTimeout = 5 * time.Second

// stateCollector reports at each scrape what the manager's cache holds, as
// kube-state-metrics does: fronts by phase, sessions per front, and per
// FailoverIP its owner, its epoch and how many fronts report holding it.
// Nothing is kept between scrapes, so a deleted object leaves no series.
type stateCollector struct {
	cache                           client.Reader
	phases, phase, sessions         *prometheus.Desc
	owner, hasOwner, epoch, holders *prometheus.Desc
}

func newStateCollector(cache client.Reader) *stateCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("webfarm_"+name, help, labels, nil)
	}
	fip := []string{"namespace", "failoverip"}
	return &stateCollector{
		cache:    cache,
		phases:   d("frontnodes", "FrontNodes by phase (Active, Draining, Drained, Down; Unknown before the first).", "phase"),
		phase:    d("front_phase", "1 for the phase a front is in (Active, Draining, Drained, Down; Unknown before the first); no series for the others.", "front", "phase"),
		sessions: d("front_sessions", "Sessions on a front as FrontNode status.sessions counts them: on its two servers, in the HAProxy of each active proxy.", "front"),
		owner:    d("failoverip_owner", "1 for the node the controller names owner of a failover IP; no series while it has none.", append(fip, "node")...),
		hasOwner: d("failoverip_has_owner", "1 when a failover IP has an owner in its status, else 0.", fip...),
		epoch:    d("failoverip_epoch", "The fencing epoch in a failover IP's status.", fip...),
		holders:  d("failoverip_holders", "Fronts not Down whose agent reports holding a failover IP (state Holding); more than 1 must never last.", fip...),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.phases, c.phase, c.sessions, c.owner, c.hasOwner, c.epoch, c.holders} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	var fronts webfarmv1.FrontNodeList
	if err := c.cache.List(ctx, &fronts); err != nil {
		ch <- prometheus.NewInvalidMetric(c.phases, err)
		return
	}
	phases := map[webfarmv1.FrontPhase]int{webfarmv1.FrontActive: 0, webfarmv1.FrontDraining: 0, webfarmv1.FrontDrained: 0, webfarmv1.FrontDown: 0}
	holders := map[string]int{}
	for i := range fronts.Items {
		f := &fronts.Items[i]
		phases[f.Status.Phase]++
		gauge(c.phase, 1, f.Name, phaseName(f.Status.Phase))
		if f.Status.Sessions != nil {
			gauge(c.sessions, float64(*f.Status.Sessions), f.Name)
		}
		// A Down front's report is the last it wrote before it fell
		// silent: it has fenced itself since, or will within its grant.
		for _, r := range f.Status.FailoverIPs {
			if r.State == webfarmv1.VIPHolding && f.Status.Phase != webfarmv1.FrontDown {
				holders[r.Name]++
			}
		}
	}
	for phase, n := range phases {
		gauge(c.phases, float64(n), phaseName(phase))
	}
	var fips webfarmv1.FailoverIPList
	if err := c.cache.List(ctx, &fips); err != nil {
		ch <- prometheus.NewInvalidMetric(c.owner, err)
		return
	}
	for i := range fips.Items {
		f := &fips.Items[i]
		ns, name := f.Namespace, f.Name
		has := 0.0
		if f.Status.Owner != "" {
			has = 1
			gauge(c.owner, 1, ns, name, f.Status.Owner)
		}
		gauge(c.hasOwner, has, ns, name)
		gauge(c.epoch, float64(f.Status.Epoch), ns, name)
		gauge(c.holders, float64(holders[farmKey(ns, name)]), ns, name)
	}
}

// MetricNames are the names of every metric the controller serves beside
// controller-runtime's, for checks of the dashboards and alerts.
func MetricNames() []string {
	return metrics.Names(append(metrics.ControllerCollectors(), newStateCollector(nil))...)
}

// phaseName is a front's phase as a label: Unknown before the first.
func phaseName(p webfarmv1.FrontPhase) string {
	if p == "" {
		return "Unknown"
	}
	return string(p)
}

// countOwnerChange counts an owner the controller wrote.
func countOwnerChange(fip *webfarmv1.FailoverIP) {
	metrics.OwnerChanges.WithLabelValues(fip.Namespace, fip.Name).Inc()
}
