package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webfarm/webfarm/agent/uploads"
)

// uploadsCollector reads the declared directories' sync at each scrape,
// by directory ("namespace/farm/directory").
type uploadsCollector struct {
	statuses func() map[string]uploads.Status
	now      func() time.Time

	pending, oldest, caughtUp, conflicts, pushed *prometheus.Desc
}

func newUploadsCollector(statuses func() map[string]uploads.Status, now func() time.Time) *uploadsCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("webfarm_uploads_"+name, help, []string{"directory"}, nil)
	}
	return &uploadsCollector{
		statuses:  statuses,
		now:       now,
		pending:   d("pending", "Local changes of a declared directory not yet on every peer."),
		oldest:    d("oldest_pending_seconds", "Age of the oldest of them; 0 with none."),
		caughtUp:  d("caught_up", "1 once the directory matched every peer that answered at its catch-up; until then the front's servers stay in drain."),
		conflicts: d("conflicts_total", "Versions of a path that lost to another (newest modification time, then node name)."),
		pushed:    d("pushed_total", "Paths this front sent to a peer."),
	}
}

func (c *uploadsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pending, c.oldest, c.caughtUp, c.conflicts, c.pushed} {
		ch <- d
	}
}

func (c *uploadsCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	for dir, st := range c.statuses() {
		age := 0.0
		if !st.Oldest.IsZero() {
			age = now.Sub(st.Oldest).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(st.Pending), dir)
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age, dir)
		ch <- prometheus.MustNewConstMetric(c.caughtUp, prometheus.GaugeValue, boolGauge(st.CaughtUp), dir)
		ch <- prometheus.MustNewConstMetric(c.conflicts, prometheus.CounterValue, float64(st.Conflicts), dir)
		ch <- prometheus.MustNewConstMetric(c.pushed, prometheus.CounterValue, float64(st.Pushed), dir)
	}
}
