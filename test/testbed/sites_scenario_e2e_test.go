package testbed

import (
	"context"
	"strings"
	"testing"
)

// TestE2ESitesScenario runs the demo's Sites scenario on a testbed of its
// own, as assertions: every front's nginx serves the vhosts its agent
// wrote, both hostnames are answered by their own site on every front
// through the VIP, HTTP redirects to HTTPS with HSTS, h2 is negotiated, a
// rotation under HTTPS load fails no request, and a certificate with the
// wrong key is reported in the Site's status and never loaded while the
// other site serves on.
func TestE2ESitesScenario(t *testing.T) {
	Skip(t)
	tb := StartT(t, Options{})
	ctx := context.Background()
	if err := tb.WaitReady(ctx, readyTimeout); err != nil {
		t.Fatal(err)
	}
	r, err := SitesHTTPS(ctx, tb)
	var table strings.Builder
	WriteTable(&table, []*Result{r})
	t.Logf("\n%s", table.String())
	for name, d := range r.Figures {
		t.Logf("%s: %v", name, round(d))
	}
	if err != nil {
		t.Fatal(err)
	}
}
