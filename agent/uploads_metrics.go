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

	pending, oldest, caughtUp, conflicts, pushed, collected, dropped, lost *prometheus.Desc
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
		conflicts: d("conflicts_total", "Versions of a path that lost to another (newest modification time, then the greater SHA-256)."),
		pushed:    d("pushed_total", "Paths this front sent to a peer."),
		collected: d("tombstones_collected_total", "Deletions forgotten: older than the tombstones' TTL, and sent to every peer."),
		dropped:   d("dropped_total", "Files dropped at a catch-up after an absence longer than the tombstones' TTL: held by no peer, unchanged since."),
		lost:      d("lost_events_total", "Times inotify's queue overflowed and events were lost: each costs a whole catch-up."),
	}
}

func (c *uploadsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pending, c.oldest, c.caughtUp, c.conflicts, c.pushed, c.collected, c.dropped, c.lost} {
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
		ch <- prometheus.MustNewConstMetric(c.collected, prometheus.CounterValue, float64(st.TombstonesCollected), dir)
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.Dropped), dir)
		ch <- prometheus.MustNewConstMetric(c.lost, prometheus.CounterValue, float64(st.LostEvents), dir)
	}
}
