package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// FailoverIPReconciler elects the owner of each FailoverIP (Elect) and
// writes it to status under a fencing epoch; it withdraws the ownership of a
// FailoverIP being deleted or in conflict (Withdraw).
type FailoverIPReconciler struct {
	*shared
	wakeups *wakeups
	// written: a reconcile right after a write reads what it wrote, not
	// the version the cache still holds.
	written *written[*webfarmv1.FailoverIP]
	// witnesses: the owners' own proofs of liveness (status.ownerWitness).
	witnesses *Witnesses
}

// Reconcile keeps the FailoverIP req names: first its lifecycle — the
// finalizer, and the withdrawal of its ownership while it is deleted or in
// conflict — then, when nothing blocks it, its election.
func (r *FailoverIPReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	fip := &webfarmv1.FailoverIP{}
	if err := r.Get(ctx, req.NamespacedName, fip); err != nil {
		r.wakeups.forget(req)
		r.written.forget(req.NamespacedName)
		r.witnesses.Forget(req.NamespacedName)
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	fip = r.written.fresher(fip)
	stored := fip.Status
	if elect, err := r.lifecycle(ctx, fip); err != nil || !elect {
		return reconcile.Result{}, err
	}
	fronts, nodes, err := r.electionFronts(ctx, fip)
	if err != nil {
		return reconcile.Result{}, err
	}
	r.witnesses.Witnessed(req.NamespacedName, fip.Status, fronts)
	cur := ownershipOf(fip.Status)
	reported, err := r.ownerReport(ctx, fip, cur)
	if err != nil {
		return reconcile.Result{}, err
	}
	now := r.clock.Now()
	preferred, autoFailback := preference(fip, nodes)
	in := ElectionInput{
		Key: req.String(), Now: now,
		Deadtime: fip.Spec.Deadtime.Duration, Guard: fip.Spec.Guard.Duration,
		Presence:   webfarmv1.PresenceWindow(fip.Spec.Deadtime.Duration),
		Generation: fip.Generation, OwnerGeneration: reportedGeneration(reported),
		OwnerHolding:  reported != nil && reported.State == webfarmv1.VIPHolding,
		PreferredNode: preferred, AutoFailback: autoFailback,
		Current: cur, Voters: fip.Status.Voters, Fronts: fronts,
	}
	res := Elect(in)
	if d := nextElection(in, res); d > 0 {
		r.wakeups.after(req, d)
	}
	agent, err := r.ownerReport(ctx, fip, res.Ownership)
	if err != nil {
		return reconcile.Result{}, err
	}
	want := failoverIPStatus(fip, res, agent, now)
	want.Nodes = finishEligibility(nodes, fronts, res.Candidates)
	if failoverIPStatusEqual(want, stored) {
		return reconcile.Result{}, nil
	}
	return reconcile.Result{}, r.writeStatus(ctx, fip, want, res)
}

// writeStatus replaces the status, which the controller alone writes, at
// the resourceVersion it read: an election made from a stale cache must
// fail, never fence with an old epoch. A whole status also shows zero
// epochs and counts rather than leaving them out.
func (r *FailoverIPReconciler) writeStatus(ctx context.Context, fip *webfarmv1.FailoverIP, want webfarmv1.FailoverIPStatus, res ElectionResult) error {
	before := fip.DeepCopy()
	if err := r.updateStatus(ctx, fip, want); err != nil {
		return err
	}
	if res.OwnerChanged {
		countOwnerChange(fip)
		log.FromContext(ctx).Info("New owner", "failoverIP", klog.KObj(fip), "owner", want.Owner, "epoch", want.Epoch, "previousOwner", want.PreviousOwner, "released", want.PreviousOwnerReleased)
	}
	for _, e := range electionEvents(before.Status, want, res) {
		r.events.Eventf(fip, nil, e.kind, e.reason, actionElect, "%s", e.note)
	}
	for _, e := range append(eligibilityEvents(before.Status.Nodes, want.Nodes), hookEvents(before.Status.Nodes, want.Nodes)...) {
		r.events.Eventf(fip, nil, e.kind, e.reason, actionElect, "%s", e.note)
	}
	return nil
}

// updateStatus replaces fip's status with want at the resourceVersion read.
func (r *FailoverIPReconciler) updateStatus(ctx context.Context, fip *webfarmv1.FailoverIP, want webfarmv1.FailoverIPStatus) error {
	from := fip.ResourceVersion
	fip.Status = want
	if err := r.Status().Update(ctx, fip, client.FieldOwner(ControllerName)); err != nil {
		return fmt.Errorf("updating the status of FailoverIP %s/%s: %w", fip.Namespace, fip.Name, err)
	}
	r.written.record(from, fip)
	return nil
}

// nextElection is when time alone may change the result: the owner's fence
// or staleness (Elect's RequeueAfter), or a candidate's heartbeat turning
// stale. Zero when only an event can.
func nextElection(in ElectionInput, res ElectionResult) time.Duration {
	next := res.RequeueAfter
	for _, f := range in.Fronts {
		if d := in.untilStale(f); d > 0 && (next <= 0 || d < next) {
			next = d
		}
	}
	return next
}

// electionFronts gathers what the election knows of the fronts of the farms
// that list the FailoverIP, or of the nodes its nodeSelector selects, and of
// its owner; for the latter, also why each selected node is eligible or not.
func (r *FailoverIPReconciler) electionFronts(ctx context.Context, fip *webfarmv1.FailoverIP) ([]ElectionFront, []webfarmv1.NodeEligibility, error) {
	if standalone(fip) {
		return r.standaloneFronts(ctx, fip)
	}
	fronts, err := r.farmFronts(ctx, fip)
	return fronts, nil, err
}

// farmFronts gathers what the election knows of the fronts of the farms
// that list the FailoverIP, and of its owner.
func (r *FailoverIPReconciler) farmFronts(ctx context.Context, fip *webfarmv1.FailoverIP) ([]ElectionFront, error) {
	farms, err := r.farmsListing(ctx, fip.Namespace, fip.Name)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []ElectionFront
	for i := range farms {
		fronts, err := r.frontsOfFarm(ctx, farmKey(farms[i].Namespace, farms[i].Name))
		if err != nil {
			return nil, err
		}
		for j := range fronts {
			if seen[fronts[j].Name] {
				continue
			}
			seen[fronts[j].Name] = true
			f, err := r.electionFront(ctx, fip, &fronts[j], true)
			if err != nil {
				return nil, err
			}
			out = append(out, f)
		}
	}
	if owner := fip.Status.Owner; owner != "" && !seen[owner] {
		f, err := r.formerFront(ctx, fip, owner)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// electionFront describes one front. inFarm: a front of a farm listing the
// FailoverIP; it is selected when the FailoverIP's frontSelector matches too.
func (r *FailoverIPReconciler) electionFront(ctx context.Context, fip *webfarmv1.FailoverIP, front *webfarmv1.FrontNode, inFarm bool) (ElectionFront, error) {
	hb := r.tracker.heartbeat(front.Name)
	f := ElectionFront{
		Name:          front.Name,
		Draining:      front.Spec.DrainRequested,
		ShuttingDown:  front.Status.ShuttingDown,
		Heard:         hb.heard,
		LastAlive:     hb.lastAlive,
		ReleasedEpoch: releasedEpoch(front, fip),
		UnheardEpoch:  unheardEpoch(front, fip),
		UnheardAfter:  unheardAfter(front, fip),
		UnheardFronts: front.Status.UnheardFronts,
		HoldingEpoch:  holdingEpoch(front, fip),
		LeaseVersion:  r.tracker.Seen(front.Name),
		NotServing:    notServing(front, fip),
	}
	node := &corev1.Node{}
	if err := r.Get(ctx, types.NamespacedName{Name: front.Name}, node); client.IgnoreNotFound(err) != nil {
		return f, fmt.Errorf("getting Node %s: %w", front.Name, err)
	} else if err != nil {
		node = nil
	}
	f.OutOfService = outOfService(node)
	f.OutOfServiceFor = r.tracker.OutOfServiceFor(front.Name, f.OutOfService)
	switch {
	case !inFarm:
	case fip.Spec.FrontSelector == nil:
		f.Selected = true
	case node != nil:
		f.Selected = selectorMatches(fip.Spec.FrontSelector, node.Labels)
	}
	return f, nil
}

// outOfService tells whether an operator marked node as shut down, with
// the taint of Kubernetes' non-graceful node shutdown; nil (a Node that
// is gone) does not count: a Node object can be deleted while its machine
// runs.
func outOfService(node *corev1.Node) bool {
	return node != nil && slices.ContainsFunc(node.Spec.Taints, func(t corev1.Taint) bool {
		return t.Key == corev1.TaintNodeOutOfService
	})
}

// formerFront describes an owner that no farm listing the FailoverIP counts
// among its fronts any more: not selected, judged by its heartbeat, so that
// it is asked to release while alive and replaced only once fenced.
func (r *FailoverIPReconciler) formerFront(ctx context.Context, fip *webfarmv1.FailoverIP, owner string) (ElectionFront, error) {
	front, err := r.frontNode(ctx, owner)
	if err != nil {
		return ElectionFront{}, err
	}
	if front != nil {
		return r.electionFront(ctx, fip, front, false)
	}
	hb := r.tracker.heartbeat(owner)
	return ElectionFront{Name: owner, Heard: hb.heard, LastAlive: hb.lastAlive, LeaseVersion: r.tracker.Seen(owner)}, nil
}

// ownerReport is what the owner's agent reports of fip at the current
// epoch; nil when there is no owner or no such report.
func (r *FailoverIPReconciler) ownerReport(ctx context.Context, fip *webfarmv1.FailoverIP, own Ownership) (*webfarmv1.NodeFailoverIPStatus, error) {
	if own.Owner == "" {
		return nil, nil
	}
	front, err := r.frontNode(ctx, own.Owner)
	if err != nil || front == nil {
		return nil, err
	}
	key := farmKey(fip.Namespace, fip.Name)
	for i, s := range front.Status.FailoverIPs {
		if s.Name == key && s.Epoch == own.Epoch && sameObject(s, fip) {
			return &front.Status.FailoverIPs[i], nil
		}
	}
	return nil, nil
}

// reportedGeneration is the FailoverIP generation with which the owner
// reports holding the address; 0 when it does not report holding it. A new
// owner that still waits for the previous one to stop listens for the
// longest deadtime in status.fencingTiming, so the cut waits until it holds.
func reportedGeneration(s *webfarmv1.NodeFailoverIPStatus) int64 {
	if s == nil || s.State != webfarmv1.VIPHolding {
		return 0
	}
	return s.ObservedGeneration
}

// releasedEpoch is the epoch at which front's agent reports having removed
// fip's address — released on request, or fenced itself — and so stopped
// announcing it; 0 when it reports neither. A fenced owner would otherwise
// keep the address unheld for as long as its heartbeat stays fresh: an agent
// holds again only at a new epoch.
func releasedEpoch(front *webfarmv1.FrontNode, fip *webfarmv1.FailoverIP) int64 {
	key := farmKey(fip.Namespace, fip.Name)
	for _, s := range front.Status.FailoverIPs {
		if s.Name == key && sameObject(s, fip) && (s.State == webfarmv1.VIPReleased || s.State == webfarmv1.VIPFenced) {
			return s.Epoch
		}
	}
	return 0
}

// holdingEpoch is the epoch at which front's agent reports holding fip's
// address; 0 when it does not.
func holdingEpoch(front *webfarmv1.FrontNode, fip *webfarmv1.FailoverIP) int64 {
	key := farmKey(fip.Namespace, fip.Name)
	for _, s := range front.Status.FailoverIPs {
		if s.Name == key && sameObject(s, fip) && s.State == webfarmv1.VIPHolding {
			return s.Epoch
		}
	}
	return 0
}

// unheardEpoch is the epoch at which front's agent reports fip's owner
// unheard (OwnerUnheard); 0 when it does not. Only a report naming fip's
// UID counts: one about an earlier object of the same name must not move
// this one's address.
func unheardEpoch(front *webfarmv1.FrontNode, fip *webfarmv1.FailoverIP) int64 {
	key := farmKey(fip.Namespace, fip.Name)
	for _, s := range front.Status.FailoverIPs {
		if s.Name == key && s.UID == fip.UID && s.State == webfarmv1.VIPOwnerUnheard {
			return s.Epoch
		}
	}
	return 0
}

// unheardAfter is the deadtime front's agent waited before reporting fip's
// owner unheard; 0 when it reports nothing of the kind.
func unheardAfter(front *webfarmv1.FrontNode, fip *webfarmv1.FailoverIP) time.Duration {
	key := farmKey(fip.Namespace, fip.Name)
	for _, s := range front.Status.FailoverIPs {
		if s.Name == key && s.UID == fip.UID && s.State == webfarmv1.VIPOwnerUnheard && s.UnheardAfter != nil {
			return s.UnheardAfter.Duration
		}
	}
	return 0
}

// sameObject tells whether an agent's report may be about fip: it names
// fip's UID, or no UID (an agent older than UIDs in reports).
func sameObject(s webfarmv1.NodeFailoverIPStatus, fip *webfarmv1.FailoverIP) bool {
	return s.UID == "" || s.UID == fip.UID
}

// notServing is true when front's agent reports that it cannot serve fip;
// no report counts as serving, so that an older agent stays a candidate.
func notServing(front *webfarmv1.FrontNode, fip *webfarmv1.FailoverIP) bool {
	key := farmKey(fip.Namespace, fip.Name)
	for _, s := range front.Status.Serving {
		if s.Name == key {
			return !s.Serving
		}
	}
	return false
}

func setupFailoverIPs(mgr ctrl.Manager, s *shared) error {
	r := &FailoverIPReconciler{shared: s, wakeups: newWakeups(s.clock), written: newWritten[*webfarmv1.FailoverIP](), witnesses: NewWitnesses(s.clock)}
	c := mgr.GetCache()
	w := &failoverIPWatches{shared: s}
	return ctrl.NewControllerManagedBy(mgr).
		Named("failoverip").
		WatchesRawSource(watch(c, &webfarmv1.FailoverIP{}, failoverIPSpecChanged, byKey[*webfarmv1.FailoverIP])).
		Watches(&webfarmv1.FailoverIP{}, handler.EnqueueRequestsFromMapFunc(w.forSameAddress), builder.WithPredicates(sameAddressChanged)).
		WatchesRawSource(watch(c, &webfarmv1.WebFarm{}, farmSpecChanged, w.forFarm)).
		WatchesRawSource(watch(c, &webfarmv1.FrontNode{}, frontChangedForElection, w.forFront)).
		WatchesRawSource(watch(c, &corev1.Node{}, nodeLabelsChanged, w.forNode)).
		WatchesRawSource(s.watchLeases(c, w.forNodeName, w.ownedBy)).
		WatchesRawSource(r.wakeups).
		Complete(r)
}
