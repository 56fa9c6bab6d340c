package testbed

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// EditScenarios are the fault trials that edit the FailoverIP while it is
// held (make test-faults-farm): a deadtime cut the isolated owner cannot
// see, an allowed edit of every timing, the object deleted and created
// again (last, so that the trials before it run on the object the farm
// started with).
func EditScenarios() []Scenario {
	return []Scenario{
		{"deadtime cut while the owner is isolated", DeadtimeCutWhileIsolated},
		{"FailoverIP timings edited while held", FailoverIPEdited},
		{"FailoverIP recreated while held", FailoverIPRecreated},
	}
}

// cutTimings are the timings DeadtimeCutWhileIsolated edits in: deadtime
// cut to well under the old deadtime minus guard, so that the controller
// would move the VIP while the isolated owner still holds it by the old
// timings, were the old ones forgotten (issue 9, finding 4).
var cutTimings = WebfarmSettings{Name: "cut", Keepalive: 200 * time.Millisecond, Deadtime: 600 * time.Millisecond, Guard: 100 * time.Millisecond}

// editedTimings are the timings FailoverIPEdited edits in: every one
// changed, an edit the API allows while the address is held.
var editedTimings = WebfarmSettings{Name: "edited", Keepalive: 300 * time.Millisecond, Deadtime: 1500 * time.Millisecond, Guard: 300 * time.Millisecond}

// DeadtimeCutWhileIsolated: the owner is isolated — the API server
// black-holed for it and its peer datagrams dropped both ways — and the
// FailoverIP's deadtime is cut at once, an edit the owner cannot see. It
// fences itself by the old timings, and the controller must not move the
// VIP before those run out. The old timings come back with the owner.
func DeadtimeCutWhileIsolated(ctx context.Context, tb *Testbed) (*Result, error) {
	return tb.timingsTrial(ctx, "deadtime cut while the owner is isolated", cutTimings, (*Front).isolate,
		func(before WebfarmSettings) string {
			return fmt.Sprintf("its API server is black-holed and its peer datagrams dropped, then deadtime is cut from %s to %s (keepalive %s, guard %s); all restored after %%s",
				before.Deadtime, cutTimings.Deadtime, cutTimings.Keepalive, cutTimings.Guard)
		})
}

// isolate black-holes the API server for the front and drops its peer
// datagrams both ways (or undoes both).
func (f *Front) isolate(on bool) error {
	if err := f.blackholeAPI(on); err != nil && on {
		return err
	}
	return f.blockPeers(on)
}

// FailoverIPEdited: every timing of the FailoverIP is edited while its
// owner holds the VIP, then edited back: nothing should move.
func FailoverIPEdited(ctx context.Context, tb *Testbed) (*Result, error) {
	return tb.timingsTrial(ctx, "FailoverIP timings edited while held", editedTimings, nil,
		func(before WebfarmSettings) string {
			return fmt.Sprintf("kubectl patch: keepalive %s, deadtime %s, guard %s (from %s, %s, %s); edited back after %%s",
				editedTimings.Keepalive, editedTimings.Deadtime, editedTimings.Guard, before.Keepalive, before.Deadtime, before.Guard)
		})
}

// timingsTrial is a fault trial that edits the FailoverIP's timings to
// edit, after doing owner (when not nil) to the owner, and undoes both;
// says narrates it from the timings before.
func (tb *Testbed) timingsTrial(ctx context.Context, name string, edit WebfarmSettings, owner func(f *Front, on bool) error, says func(before WebfarmSettings) string) (*Result, error) {
	before, err := tb.failoverTimings(ctx)
	if err != nil {
		return newResult(name), err
	}
	if owner == nil {
		owner = func(*Front, bool) error { return nil }
	}
	return tb.faultTrial(ctx, fault{
		name: name,
		says: says(before),
		inject: func(f *Front) error {
			if err := owner(f, true); err != nil {
				return err
			}
			return tb.patchFailoverTimings(edit)
		},
		undo: func(f *Front) error { return errors.Join(owner(f, false), tb.patchFailoverTimings(before)) },
	})
}

// FailoverIPRecreated: the FailoverIP is deleted while its owner holds the
// VIP and, once its finalizer let it go, created again under the same name
// with the same spec: the new object starts clean (new UID, epochs from
// zero) and the VIP must come back, never answered by two fronts.
func FailoverIPRecreated(ctx context.Context, tb *Testbed) (*Result, error) {
	return tb.faultTrial(ctx, fault{
		name:   "FailoverIP recreated while held",
		says:   "its FailoverIP is deleted and, once gone, created again with the same name and spec; watched for %s",
		inject: func(*Front) error { return tb.recreateFailoverIP(ctx) },
		undo:   func(*Front) error { return nil },
	})
}

// recreateFailoverIP deletes the sample FailoverIP, waits until it is gone,
// and creates it again with the same name, labels and spec.
func (tb *Testbed) recreateFailoverIP(ctx context.Context) error {
	old, err := tb.FailoverIP(ctx)
	if err != nil {
		return err
	}
	c := tb.KubeClient()
	if err := c.Delete(ctx, old, client.Preconditions{UID: &old.UID}); err != nil {
		return fmt.Errorf("deleting FailoverIP %s: %w", old.Name, err)
	}
	deleted := time.Now()
	err = tb.WaitFor(func() (bool, error) {
		_, err := tb.FailoverIP(ctx)
		return apierrors.IsNotFound(err), nil
	}, changeTimeout)
	if err != nil {
		return fmt.Errorf("the deleted FailoverIP %s never went: %w", old.Name, err)
	}
	tb.say("   FailoverIP %s deleted; gone after %s", old.Name, round(time.Since(deleted)))
	fresh := &webfarmv1.FailoverIP{
		ObjectMeta: metav1.ObjectMeta{Name: old.Name, Namespace: old.Namespace, Labels: old.Labels},
		Spec:       old.Spec,
	}
	if err := c.Create(ctx, fresh); err != nil {
		return fmt.Errorf("creating FailoverIP %s again: %w", old.Name, err)
	}
	return nil
}

// failoverTimings reads the sample FailoverIP's timings.
func (tb *Testbed) failoverTimings(ctx context.Context) (WebfarmSettings, error) {
	fip, err := tb.FailoverIP(ctx)
	if err != nil {
		return WebfarmSettings{}, err
	}
	s := fip.Spec
	return WebfarmSettings{Name: "before", Keepalive: s.Keepalive.Duration, Deadtime: s.Deadtime.Duration, Guard: s.Guard.Duration}, nil
}
