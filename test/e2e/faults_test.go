package e2e

import (
	"testing"

	"github.com/webfarm/webfarm/test/testbed"
)

// TestFaultTrials runs the fault trials of the VIP owner (make test-faults,
// part of make test): its agent SIGKILLed, its agent SIGSTOPped for 10 s,
// its data link down, its HAProxy dead, the API server black-holed for it,
// its peer datagrams lost (mute). Each asserts that
// no two fronts ever answer for the VIP and that clients are served again
// while the fault lasts. Not named TestE2E…: it runs on a testbed of its
// own, after make test-e2e.
func TestFaultTrials(t *testing.T) {
	testbed.Skip(t)
	run(t, start(t, testbed.Options{}), testbed.FaultScenarios())
}

// TestFaultTrialsTwoFronts runs the fault trials that need a farm of two
// fronts (make test-faults-farm): a partition between them, both still
// reaching the API server.
func TestFaultTrialsTwoFronts(t *testing.T) {
	testbed.Skip(t)
	run(t, start(t, testbed.Options{Fronts: 2}), testbed.FaultScenariosTwoFronts())
}

// TestFaultTrialsEdits runs the fault trials that edit the FailoverIP while
// it is held (make test-faults-farm): a deadtime cut while the owner is
// isolated, every timing edited, the object recreated. Kept out of make
// test-faults so that each target stays within about two and a half minutes.
func TestFaultTrialsEdits(t *testing.T) {
	testbed.Skip(t)
	run(t, start(t, testbed.Options{}), testbed.EditScenarios())
}
