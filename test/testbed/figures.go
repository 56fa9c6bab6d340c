package testbed

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// WriteLiveFigures prints a few figures scraped from the controller, every
// agent and, through each agent, its HAProxy: what the metrics say the
// farm did.
func WriteLiveFigures(ctx context.Context, w io.Writer, tb *Testbed) error {
	fip := `failoverip="` + FailoverIPName + `"`
	m, err := tb.ControllerMetrics(ctx)
	if err != nil {
		return err
	}
	owner := "none"
	for series := range m {
		if node, ok := strings.CutPrefix(series, "webfarm_failoverip_owner{"); ok && strings.Contains(node, fip) {
			_, owner, _ = strings.Cut(node, `node="`)
			owner, _, _ = strings.Cut(owner, `"`)
		}
	}
	fmt.Fprintf(w, "controller: failover IP %s owned by %s at epoch %.0f, %.0f owner changes; fronts Active %.0f, Down %.0f\n",
		FailoverIPName, owner, m.Sum("webfarm_failoverip_epoch", fip), m.Sum("webfarm_failoverip_owner_changes_total", fip),
		m.Sum("webfarm_frontnodes", `phase="Active"`), m.Sum("webfarm_frontnodes", `phase="Down"`))
	for _, f := range tb.Fronts() {
		a, err := f.AgentMetrics(ctx)
		if err != nil {
			fmt.Fprintf(w, "%s: agent not scraped: %v\n", f.Name, err)
			continue
		}
		takeovers := a.Sum("webfarm_failover_takeover_wait_seconds_count")
		wait := 0.0
		if takeovers > 0 {
			wait = a.Sum("webfarm_failover_takeover_wait_seconds_sum") / takeovers
		}
		fmt.Fprintf(w, "%s: %.0f take-overs (agent's wait %.2fs on average), %.0f fences, %.0f HAProxy reloads, peer heartbeats %.0f accepted / %.0f rejected, %.0f API requests",
			f.Name, takeovers, wait, a.Sum("webfarm_failover_fences_total"), a.Sum("webfarm_haproxy_reloads_total"),
			a.Sum("webfarm_peer_heartbeats_accepted_total"), a.Sum("webfarm_peer_datagrams_rejected_total"),
			a.Sum("webfarm_agent_api_request_duration_seconds_count"))
		if h, err := ScrapeAs(ctx, f.Namespace, AgentMetricsURL+"/haproxy", f.scrapeToken); err == nil {
			fmt.Fprintf(w, ", HAProxy served %.0f requests (%.0f 5xx)",
				h.Sum("haproxy_frontend_http_requests_total", `proxy="farm_`), h.Sum("haproxy_frontend_http_responses_total", `proxy="farm_`, `code="5xx"`))
		}
		fmt.Fprintln(w)
	}
	return nil
}
