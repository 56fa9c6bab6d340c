package testbed

import (
	"context"
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// TestE2EFailoverIPDeletedWhileHeld deletes the sample FailoverIP while its
// owner holds and announces the VIP. The object must stay until the address
// is gone: once it is gone, no front has the VIP on its link, and the ARP
// watcher in the client namespace hears no front answer for it any more.
func TestE2EFailoverIPDeletedWhileHeld(t *testing.T) {
	tb, owner := startServing(t)
	ctx := context.Background()
	w, err := tb.WatchARP()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := WaitFor(func() (bool, error) {
		h := w.Holders()
		return len(h) > 0 && h[len(h)-1] == owner, nil
	}, 5*time.Second); err != nil {
		t.Fatalf("the ARP watcher never heard owner %s answer: %v (events %v)", owner, err, w.Events())
	}

	deleted := time.Now()
	if _, err := tb.Kubectl("delete", "failoverip", "--namespace", SamplesNamespace, FailoverIPName, "--wait=false"); err != nil {
		t.Fatal(err)
	}
	if err := WaitFor(func() (bool, error) {
		_, err := tb.FailoverIP(ctx)
		return apierrors.IsNotFound(err), nil
	}, 30*time.Second); err != nil {
		t.Fatalf("the deleted FailoverIP never went: %v", err)
	}
	gone := time.Now()
	t.Logf("FailoverIP deleted while %s held it: gone after %s", owner, gone.Sub(deleted).Round(time.Millisecond))

	if err := tb.holdsFor(2*time.Second, func() error {
		holders, err := tb.Holders()
		if err != nil {
			return err
		}
		if len(holders) > 0 {
			return fmt.Errorf("the FailoverIP is gone but %v still hold the VIP", holders)
		}
		for _, e := range w.Events() {
			if e.Time.After(gone) {
				return fmt.Errorf("%s answered for the VIP at %s, after its FailoverIP was gone", e.MAC, e.Time.Format(time.StampMicro))
			}
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if c := w.Conflicts(probeInterval / 2); len(c) > 0 {
		t.Errorf("two fronts answered at once: %v", c)
	}
	var last time.Time
	for _, e := range w.Events() {
		last = e.Time
	}
	t.Logf("last ARP answer for the VIP %s before the object was gone", gone.Sub(last).Round(time.Millisecond))
}
