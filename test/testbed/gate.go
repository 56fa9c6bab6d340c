package testbed

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// EnabledVar is the environment variable that enables the end-to-end tests
// (named TestE2E…): they need root, nginx, haproxy, tcpdump and arping
// (hack/install-packages.sh) and the control plane (hack/control-plane.sh).
const EnabledVar = "WEBFARM_E2E"

// Skip skips t unless end-to-end tests are enabled and it runs as root.
func Skip(t testing.TB) {
	t.Helper()
	if os.Getenv(EnabledVar) != "1" {
		t.Skipf("end-to-end test: set %s=1 and run as root (make test-e2e)", EnabledVar)
	}
	if os.Geteuid() != 0 {
		t.Skip("end-to-end test: needs root")
	}
}

// StartT starts a testbed for a test, narrating into the test log, and
// closes it when the test ends, pass, fail or panic. It skips t unless
// end-to-end tests are enabled.
func StartT(t testing.TB, o Options) *Testbed {
	t.Helper()
	Skip(t)
	if o.Log == nil {
		o.Log = testLog{t}
	}
	// Long enough to wait for another testbed on this machine to finish.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	tb, err := Start(ctx, o)
	if err != nil {
		t.Fatalf("starting the testbed: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			tb.dumpLogs(t)
		}
		if err := tb.Close(); err != nil {
			t.Errorf("closing the testbed: %v", err)
		}
	})
	return tb
}

type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// dumpLogs writes the tail of every process's log into the test log.
func (tb *Testbed) dumpLogs(t testing.TB) { t.Log(tb.LogTails(40)) }

// LogTails returns the last n lines of the controller's and every agent's
// log, for failure reports.
func (tb *Testbed) LogTails(n int) string {
	var b strings.Builder
	if tb.ctl != nil {
		fmt.Fprintf(&b, "--- controller log (last %d lines):\n%s\n", n, tb.ctl.LogTail(n))
	}
	for _, f := range tb.fronts {
		if f.agent != nil {
			fmt.Fprintf(&b, "--- agent %s log (last %d lines):\n%s\n", f.Name, n, f.agent.LogTail(n))
		}
	}
	return b.String()
}
