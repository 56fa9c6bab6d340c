package e2e

import (
	"fmt"
	"testing"

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
