package e2e

import (
	"testing"

	"github.com/webfarm/webfarm/test/testbed"
)

// TestFaultTrials runs the fault trials of the VIP owner (make test-faults,
// part of make test): its agent SIGKILLed, its agent SIGSTOPped for 10 s,
// its data link down, the API server black-holed for it. Each asserts that
// no two fronts ever answer for the VIP and that clients are served again
// while the fault lasts. Not named TestE2E…: it runs on a testbed of its
// own, after make test-e2e.
func TestFaultTrials(t *testing.T) {
	testbed.Skip(t)
	run(t, start(t, testbed.Options{}), testbed.FaultScenarios())
}
