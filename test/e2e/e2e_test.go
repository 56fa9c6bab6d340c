// Package e2e runs the farm's end-to-end scenarios on the local testbed
// (test/testbed): the demo's eight, then the resilience checks. Tests are
// named TestE2E… and run as root with WEBFARM_E2E=1 (make test-e2e).
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/webfarm/webfarm/test/testbed"
)

// running is the testbed of the test in progress, closed on Ctrl-C: the
// test binary would otherwise die with its namespaces and processes left
// behind (the next run sweeps them, but not the control plane).
var running struct {
	sync.Mutex
	tb *testbed.Testbed
}

func TestMain(m *testing.M) {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-signals
		running.Lock()
		if running.tb != nil {
			fmt.Fprintf(os.Stderr, "e2e: %v: removing the testbed\n", sig)
			_ = running.tb.Close()
		}
		os.Exit(1)
	}()
	os.Exit(m.Run())
}

// start starts a full testbed for t, waits until the farm serves, and
// removes it when t ends.
func start(t testing.TB, opts testbed.Options) *testbed.Testbed {
	t.Helper()
	tb := testbed.StartT(t, opts)
	running.Lock()
	running.tb = tb
	running.Unlock()
	t.Cleanup(func() {
		running.Lock()
		running.tb = nil
		running.Unlock()
	})
	if err := tb.WaitReady(context.Background(), 90*time.Second); err != nil {
		t.Fatal(err)
	}
	return tb
}

// run runs the scenarios in order as subtests. Each starts from the farm
// the previous one left, so after a failure the next runs only once the
// farm serves again on every front.
func run(t *testing.T, tb *testbed.Testbed, scenarios []testbed.Scenario) {
	var results []*testbed.Result
	defer func() {
		var table tableLog
		testbed.WriteTable(&table, results)
		t.Logf("summary:\n%s", table)
	}()
	for i, s := range scenarios {
		ok := t.Run(s.Name, func(t *testing.T) {
			r, err := s.Run(context.Background(), tb)
			results = append(results, r)
			if err != nil {
				t.Fatal(err)
			}
		})
		if ok || i == len(scenarios)-1 {
			continue
		}
		if err := tb.WaitReady(context.Background(), 90*time.Second); err != nil {
			t.Fatalf("after %s failed, the farm did not recover; the later scenarios cannot run: %v", s.Name, err)
		}
	}
}

type tableLog []byte

func (l *tableLog) Write(p []byte) (int, error) { *l = append(*l, p...); return len(p), nil }
func (l tableLog) String() string               { return string(l) }

// TestE2EDemo runs the eight scenarios of `make demo` as assertions.
func TestE2EDemo(t *testing.T) {
	testbed.Skip(t)
	run(t, start(t, testbed.Options{Uploads: true}), testbed.DemoScenarios)
}

// TestE2EResilience: a controller restart, an isolated owner, a
// configuration reload, a 60 s API server outage, the API server
// black-holed for the owner (a fault trial), an agent restart.
func TestE2EResilience(t *testing.T) {
	testbed.Skip(t)
	run(t, start(t, testbed.Options{}), testbed.ResilienceScenarios(60*time.Second))
}

// TestE2EServing: the address follows a serving front — the owner's data
// link down while its API path stays up, the owner's HAProxy dead — and,
// with every front back, steady traffic costs no more than one API write
// per front every 10 s.
func TestE2EServing(t *testing.T) {
	testbed.Skip(t)
	run(t, start(t, testbed.Options{}), []testbed.Scenario{
		{Name: "owner link down", Run: testbed.OwnerLinkDown},
		{Name: "owner HAProxy dead", Run: testbed.OwnerProxyDead},
		{Name: "quiet API", Run: testbed.QuietAPI},
	})
}
