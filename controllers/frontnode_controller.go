package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// frontNodeWorkers reconcile fronts in parallel: a drain annotation must not
// wait behind the reconciles of a few hundred fronts whose heartbeat is
// being re-checked. Each request is still reconciled by one worker at a time.
const frontNodeWorkers = 4

// FrontNodeReconciler keeps one FrontNode per Node that some WebFarm
// selects: its spec from the Node and the farms, the controller's part of
// its status from the heartbeat and the sessions the active proxies report.
// Requests name the Node (and so the FrontNode).
type FrontNodeReconciler struct {
	*shared
	wakeups *wakeups
	// warned remembers, by warnKey, the last problem of each kind reported
	// on each Node, so that an event is sent once per new problem rather
	// than at every reconcile.
	warned sync.Map
}

// Reconcile brings the FrontNode named req.Name in line with its Node.
func (r *FrontNodeReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	node, err := r.node(ctx, req.Name)
	if err != nil {
		return reconcile.Result{}, err
	}
	front, err := r.frontNode(ctx, req.Name)
	if err != nil {
		return reconcile.Result{}, err
	}
	var farms webfarmv1.WebFarmList
	if err := r.List(ctx, &farms); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing WebFarms: %w", err)
	}
	var fips webfarmv1.FailoverIPList
	if err := r.List(ctx, &fips); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing FailoverIPs: %w", err)
	}
	var sel selection
	if node != nil {
		sel = selection{farms: selectingFarms(farms.Items, node.Labels), failoverIPs: selectingFailoverIPs(fips.Items, node.Labels)}
	}
	// A Node that is gone takes its FrontNode along: the FailoverIPs it
	// held move once its Lease is silent and its voters say so. A Node
	// that nothing selects keeps one while a FailoverIP awaits its agent's
	// report, and gets one again if it was deleted meanwhile: `kubectl
	// delete webfarm --all` deletes the FrontNodes too ("webfarm" is also
	// the category of every kind), and the report has nowhere else to go.
	if len(sel.farms) == 0 && len(sel.failoverIPs) == 0 && (node == nil || !reportsAwaited(fips.Items, req.Name)) {
		return reconcile.Result{}, r.remove(ctx, req, front)
	}
	front, err = r.applySpec(ctx, node, front, sel)
	if err != nil || front == nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, r.applyStatus(ctx, node, front, farms.Items)
}

// node returns the named Node, nil when it is gone.
func (r *FrontNodeReconciler) node(ctx context.Context, name string) (*corev1.Node, error) {
	node := &corev1.Node{}
	err := r.Get(ctx, types.NamespacedName{Name: name}, node)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting Node %s: %w", name, err)
	}
	return node, nil
}

// selection is what selects a node: farms by their frontSelector, standalone
// FailoverIPs by their nodeSelector, each as "namespace/name", sorted.
type selection struct {
	farms, failoverIPs []string
}

// remove deletes the FrontNode of a Node that is gone, or that neither a
// farm nor a standalone FailoverIP selects any more and whose agent no
// FailoverIP awaits a report from.
func (r *FrontNodeReconciler) remove(ctx context.Context, req reconcile.Request, front *webfarmv1.FrontNode) error {
	r.wakeups.forget(req)
	r.deadtimes.forget(req.Name)
	r.warned.Delete(warnKey{req.Name, EventInvalidDrainAnnotation})
	r.warned.Delete(warnKey{req.Name, EventNoNodeAddress})
	if front == nil {
		return nil
	}
	if err := r.Delete(ctx, front); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting FrontNode %s: %w", front.Name, err)
	}
	log.FromContext(ctx).Info("Deleted FrontNode: its Node is gone, or no WebFarm or FailoverIP selects it or awaits its report", "frontNode", klog.KObj(front))
	return nil
}

// applySpec creates the FrontNode or patches its spec when the Node or the
// farms changed. It returns nil, without error, when the Node cannot be a
// front yet (no address).
func (r *FrontNodeReconciler) applySpec(ctx context.Context, node *corev1.Node, front *webfarmv1.FrontNode, sel selection) (*webfarmv1.FrontNode, error) {
	drain := r.drainRequested(node)
	address := nodeAddress(node)
	if address != "" {
		r.warned.Delete(warnKey{node.Name, EventNoNodeAddress})
	} else {
		r.warnOnce(node, EventNoNodeAddress, "", "Node %s has no IP address: it cannot be a front of %v", node.Name, append(slices.Clone(sel.farms), sel.failoverIPs...))
		if front == nil {
			return nil, nil
		}
		address = front.Spec.Address
	}
	if front == nil {
		return r.create(ctx, node, address, drain, sel)
	}
	if front.Spec.Address == address && front.Spec.DrainRequested == drain && slices.Equal(front.Spec.Farms, sel.farms) && slices.Equal(front.Spec.FailoverIPs, sel.failoverIPs) {
		return front, nil
	}
	// null, not an empty list, removes a key.
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"address": address, "drainRequested": drain, "farms": sel.farms, "failoverIPs": sel.failoverIPs}})
	if err != nil {
		return nil, fmt.Errorf("encoding the spec patch of FrontNode %s: %w", front.Name, err)
	}
	if err := r.Patch(ctx, front, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(ControllerName)); err != nil {
		return nil, fmt.Errorf("patching the spec of FrontNode %s: %w", front.Name, err)
	}
	return front, nil
}

func (r *FrontNodeReconciler) create(ctx context.Context, node *corev1.Node, address string, drain bool, sel selection) (*webfarmv1.FrontNode, error) {
	cookie, err := newCookie()
	if err != nil {
		return nil, err
	}
	front := &webfarmv1.FrontNode{
		ObjectMeta: metav1.ObjectMeta{Name: node.Name},
		Spec: webfarmv1.FrontNodeSpec{
			NodeName: node.Name, Address: address, Cookie: cookie, DrainRequested: drain, Farms: sel.farms, FailoverIPs: sel.failoverIPs,
		},
	}
	if err := r.Create(ctx, front, client.FieldOwner(ControllerName)); err != nil {
		return nil, fmt.Errorf("creating FrontNode %s: %w", node.Name, err)
	}
	msg := "Created FrontNode"
	if len(sel.farms) == 0 && len(sel.failoverIPs) == 0 {
		msg = "Created FrontNode for the report a FailoverIP awaits from its agent"
	}
	log.FromContext(ctx).Info(msg, "frontNode", klog.KObj(front), "farms", sel.farms, "failoverIPs", sel.failoverIPs)
	return front, nil
}

// drainRequested reads the Node's drain annotation; an invalid value is
// reported on the Node and treated as no drain.
func (r *FrontNodeReconciler) drainRequested(node *corev1.Node) bool {
	drain, valid := parseDrain(node.Annotations)
	if valid {
		r.warned.Delete(warnKey{node.Name, EventInvalidDrainAnnotation})
		return drain
	}
	value := node.Annotations[webfarmv1.DrainAnnotation]
	r.warnOnce(node, EventInvalidDrainAnnotation, value,
		"Annotation %s=%q is neither \"true\" nor \"false\": the front keeps serving", webfarmv1.DrainAnnotation, value)
	return false
}

type warnKey struct{ node, reason string }

// warnOnce sends a Warning event on node unless the same problem (reason and
// detail) was the last of its kind reported on it.
func (r *FrontNodeReconciler) warnOnce(node *corev1.Node, reason, detail, note string, args ...any) {
	if last, ok := r.warned.Swap(warnKey{node.Name, reason}, detail); ok && last == detail {
		return
	}
	r.events.Eventf(node, nil, corev1.EventTypeWarning, reason, actionReconcile, note, args...)
}

// applyStatus writes the controller's part of the FrontNode's status when it
// changed, and wakes up when the heartbeat would turn stale.
func (r *FrontNodeReconciler) applyStatus(ctx context.Context, node *corev1.Node, front *webfarmv1.FrontNode, farms []webfarmv1.WebFarm) error {
	fips, err := r.failoverIPsOfFront(ctx, node, front.Spec.Farms, front.Spec.FailoverIPs)
	if err != nil {
		return err
	}
	proxies, err := r.activeProxies(ctx, front.Spec.Farms, farms)
	if err != nil {
		return err
	}
	// Agents renew their Lease only every QuietLeaseInterval when nothing
	// needs it faster: a front is Down once it has not for the presence
	// window. A dead owner's address moves sooner, on its peers' word.
	deadtime := webfarmv1.PresenceWindow(frontDeadtime(fips))
	r.deadtimes.set(front.Name, deadtime)
	r.tracker.NoteDeadtime(deadtime)
	hb := r.tracker.heartbeat(front.Name)
	now := r.clock.Now()
	fresh := hb.freshAt(now, deadtime)
	sessions, reported := frontSessions(front.Name, proxies)
	phase := frontPhase(fresh, front.Spec.DrainRequested, sessions, reported)
	if fresh {
		r.wakeups.after(reconcile.Request{NamespacedName: types.NamespacedName{Name: front.Name}}, hb.staleAt(deadtime).Sub(now))
	}
	was := controllerStatusOf(front.Status)
	want := controllerFrontStatus{
		ObservedGeneration: front.Generation,
		Phase:              phase,
		LastHeartbeatTime:  reportedHeartbeat(was.LastHeartbeatTime, hb, phase != was.Phase),
		Sessions:           drainSessions(front.Spec.DrainRequested, sessions, reported),
		Conditions:         frontConditions(was.Conditions, phase, front.Status.Proxy, front.Generation, now),
	}
	if want.equal(was) {
		return nil
	}
	if err := r.patchStatus(ctx, front, want); err != nil {
		return err
	}
	if phase != was.Phase {
		r.phaseEvent(front, phase, sessions)
	}
	return nil
}

func (r *FrontNodeReconciler) patchStatus(ctx context.Context, front *webfarmv1.FrontNode, st controllerFrontStatus) error {
	patch, err := json.Marshal(map[string]any{"status": st})
	if err != nil {
		return fmt.Errorf("encoding the status patch of FrontNode %s: %w", front.Name, err)
	}
	if err := r.Status().Patch(ctx, front, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(ControllerName)); err != nil {
		return fmt.Errorf("patching the status of FrontNode %s: %w", front.Name, err)
	}
	return nil
}

func (r *FrontNodeReconciler) phaseEvent(front *webfarmv1.FrontNode, phase webfarmv1.FrontPhase, sessions int32) {
	switch phase {
	case webfarmv1.FrontActive:
		r.events.Eventf(front, nil, corev1.EventTypeNormal, EventFrontActive, actionReconcile, "Front takes new clients")
	case webfarmv1.FrontDraining:
		r.events.Eventf(front, nil, corev1.EventTypeNormal, EventFrontDraining, actionReconcile, "Drain requested: no new clients, %d sessions remain", sessions)
	case webfarmv1.FrontDrained:
		r.events.Eventf(front, nil, corev1.EventTypeNormal, EventFrontDrained, actionReconcile, "No session left on the active proxies: safe to stop for maintenance")
	case webfarmv1.FrontDown:
		r.events.Eventf(front, nil, corev1.EventTypeWarning, EventFrontDown, actionReconcile, "Heartbeat Lease %s/%s not renewed within deadtime: check the node's webfarm-agent", r.namespace, webfarmv1.NodeLeaseName(front.Name))
	}
}

func setupFrontNodes(mgr ctrl.Manager, s *shared) error {
	r := &FrontNodeReconciler{shared: s, wakeups: newWakeups(s.clock)}
	c := mgr.GetCache()
	w := &frontNodeWatches{shared: s}
	return ctrl.NewControllerManagedBy(mgr).
		Named("frontnode").
		WithOptions(controller.Options{MaxConcurrentReconciles: frontNodeWorkers}).
		WatchesRawSource(watch(c, &corev1.Node{}, nodeChanged, byName[*corev1.Node])).
		WatchesRawSource(watch(c, &webfarmv1.FrontNode{}, frontChangedForItself, byName[*webfarmv1.FrontNode])).
		WatchesRawSource(watch(c, &webfarmv1.FrontNode{}, frontServersChanged, w.forFrontServers)).
		WatchesRawSource(watch(c, &webfarmv1.WebFarm{}, farmSpecChanged, w.forFarm)).
		WatchesRawSource(watch(c, &webfarmv1.FailoverIP{}, failoverIPChangedForFronts, w.forFailoverIP)).
		WatchesRawSource(s.watchLeases(c, func(_ context.Context, node string) []reconcile.Request { return nodeRequest(node) }, nil)).
		WatchesRawSource(r.wakeups).
		Complete(r)
}
