package e2e

import (
	"testing"

	"github.com/webfarm/webfarm/test/testbed"
)

// TestFaultTrials runs the fault trials of the VIP owner (make test-faults,
// part of make test): its agent SIGKILLed, its agent SIGSTOPped for 10 s,
// its data link down, its HAProxy dead, the API server black-holed for it,
// its peer datagrams lost (mute), a deadtime cut while it is isolated, the
// FailoverIP's timings edited and the FailoverIP recreated. Each asserts that
// no two fronts ever answer for the VIP and that clients are served again
// while the fault lasts. Not named TestE2E…: it runs on a testbed of its
// own, after make test-e2e.
func TestFaultTrials(t *testing.T) {
	testbed.Skip(t)
	run(t, start(t, testbed.Options{}), testbed.FaultScenarios())
}

// TestFaultTrialsTwoFronts runs the fault trials that need a farm of two
// fronts (make test-faults): a partition between them, both still reaching
// the API server.
func TestFaultTrialsTwoFronts(t *testing.T) {
	testbed.Skip(t)
	run(t, start(t, testbed.Options{Fronts: 2}), testbed.FaultScenariosTwoFronts())
}
