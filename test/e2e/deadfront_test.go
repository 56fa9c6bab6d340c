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

// TestE2EDeadFront: with two and with three fronts, under 100 new sessions
// a second with a 300 ms client timeout, the owner's hard loss costs no
// request after the new owner first answers, a non-owner's at most a
// handful, and a hung web server is counted until HAProxy stops sending it
// clients.
func TestE2EDeadFront(t *testing.T) {
	testbed.Skip(t)
	for _, fronts := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d fronts", fronts), func(t *testing.T) {
			run(t, start(t, testbed.Options{Fronts: fronts}), testbed.DeadFrontScenarios())
		})
	}
}

// BenchmarkE2EDeadFrontChecksOnly runs the dead-front trials on three fronts
// with the agents in --checks-only: what HAProxy's settings achieve alone,
// beside TestE2EDeadFront. It prints the failed requests and asserts
// nothing.
func BenchmarkE2EDeadFrontChecksOnly(b *testing.B) {
	testbed.Skip(b)
	tb := start(b, testbed.Options{Log: io.Discard})
	ctx := context.Background()
	if err := tb.ChecksOnly(ctx, true); err != nil {
		b.Fatal(err)
	}
	for _, s := range testbed.DeadFrontScenarios() {
		r, err := s.Run(ctx, tb)
		fmt.Printf("%-26s %v, load gap %s; error: %v\n", s.Name, r.Counts, r.Figures["gap"], err)
		for key, n := range r.Counts {
			b.ReportMetric(float64(n), strings.ReplaceAll(s.Name, " ", "-")+"-"+key)
		}
		if err != nil {
			if err := tb.WaitReady(ctx, 2*time.Minute); err != nil {
				b.Fatalf("the farm did not recover: %v", err)
			}
		}
	}
}
