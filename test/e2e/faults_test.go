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
// as it is, the killed and the stopped agent's address answers beside the
// new owner's (the kernel dead-man gate fixes that), and an owner whose
// data link is down keeps the VIP while its Lease renews over the API
// path. The black-holed API server passes and also runs in
// TestE2EResilience; move the others there once they pass.
func TestFaultTrials(t *testing.T) {
	testbed.Skip(t)
	run(t, start(t, testbed.Options{}), testbed.FaultScenarios())
}
