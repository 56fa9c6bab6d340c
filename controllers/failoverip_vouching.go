package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// vouchingEnds remembers, per withdrawn FailoverIP, when the controller
// first saw each voter report the withdrawal epoch: from then on the voter
// vouches for the previous owner no more (Withdraw, rule 4). Kept in memory
// only: a restarted controller sees the reports again and counts from its
// start, which can only delay a withdrawal.
type vouchingEnds struct {
	mu   sync.Mutex
	seen map[types.UID]map[string]time.Time
}

func newVouchingEnds() *vouchingEnds {
	return &vouchingEnds{seen: map[types.UID]map[string]time.Time{}}
}

// observe records that voter reports the withdrawal epoch of uid now,
// unless it did before, and returns when it was first seen doing so.
func (v *vouchingEnds) observe(uid types.UID, voter string, now time.Time) time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	voters := v.seen[uid]
	if voters == nil {
		voters = map[string]time.Time{}
		v.seen[uid] = voters
	}
	if at, ok := voters[voter]; ok {
		return at
	}
	voters[voter] = now
	return now
}

// forget drops what was seen of uid, once its withdrawal is clear.
func (v *vouchingEnds) forget(uid types.UID) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.seen, uid)
}

// stoppedVouching fills in.StoppedVouching from the voters' reports of fip
// at epoch or later, and from voters marked out of service.
func (r *FailoverIPReconciler) stoppedVouching(ctx context.Context, fip *webfarmv1.FailoverIP, in *WithdrawalInput, epoch int64) error {
	in.StoppedVouching = map[string]time.Time{}
	for _, v := range in.Voters {
		if v == in.Holder.Name {
			continue
		}
		front, err := r.frontNode(ctx, v)
		if err != nil {
			return err
		}
		node := &corev1.Node{}
		if err := r.Get(ctx, types.NamespacedName{Name: v}, node); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("getting Node %s: %w", v, err)
		} else if err != nil {
			node = nil
		}
		if viewEpoch(front, fip) >= epoch || outOfService(node) {
			in.StoppedVouching[v] = r.vouching.observe(fip.UID, v, in.Now)
		}
	}
	return nil
}

// viewEpoch is the latest epoch at which front's agent reports this very
// FailoverIP (same UID), whatever its state.
func viewEpoch(front *webfarmv1.FrontNode, fip *webfarmv1.FailoverIP) int64 {
	return latestReport(front, fip, func(webfarmv1.NodeFailoverIPStatus) bool { return true })
}
