package e2e

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/webfarm/webfarm/test/testbed"
)

// BenchmarkE2EAPIWrites prints each front's API writes per minute in steady
// state (Lease renewals and FrontNode status together) at the samples'
// defaults under steady traffic: the quiet-API scenario, whose test asserts
// at most one write every 10 s, as a figure. Nothing to put beside it:
// keepalived writes to no API server.
func BenchmarkE2EAPIWrites(b *testing.B) {
	testbed.Skip(b)
	tb := start(b, testbed.Options{Log: io.Discard})
	r, err := testbed.QuietAPI(context.Background(), tb)
	if err != nil {
		b.Fatalf("quiet API: %v", err)
	}
	perMinute := float64(time.Minute) / float64(testbed.QuietWindow)
	var total float64
	for key, n := range r.Counts {
		front, ok := strings.CutPrefix(key, "writes-")
		if !ok {
			continue
		}
		rate := float64(n) * perMinute
		total += rate
		fmt.Printf("%-8s %4.1f API writes a minute\n", front, rate)
		b.ReportMetric(rate, front+"-writes/min")
	}
	b.ReportMetric(total/float64(len(tb.Fronts())), "mean-writes/min/front")
}
