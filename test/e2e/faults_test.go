package e2e

import (
	"testing"

	"github.com/webfarm/webfarm/test/testbed"
)

// TestFaultTrials runs the fault trials of the VIP owner (make test-faults):
// its agent SIGKILLed, its agent SIGSTOPped for 10 s, its data link down,
// the API server black-holed for it. Each asserts that no two fronts ever
// answer for the VIP and that clients are served again while the fault
// lasts. Not named TestE2E…, so make test-e2e leaves it out: with the agent
// as it is, a stale holder answers beside the new owner after some of them
// (the kernel dead-man gate fixes that); move it into make test-e2e once
// they pass.
func TestFaultTrials(t *testing.T) {
	testbed.Skip(t)
	run(t, start(t, testbed.Options{}), testbed.FaultScenarios())
}
