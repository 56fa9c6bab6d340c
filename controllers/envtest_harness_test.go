package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/testenv"
)

// pollTimeout bounds every wait for the controller; it only fails slow
// controllers, it never sets the pace.
const pollTimeout = 20 * time.Second

// harness is a real control plane with the controller running in-process on
// a fake clock. Tests act as the user (nodes, annotations, farms) and as the
// agents (Leases, FrontNode status).
type harness struct {
	t   testing.TB
	ctx context.Context
	c   client.Client
	// cache is the controller's.
	cache client.Reader
	clock *testingclock.FakeClock
	// namespace is the operator namespace, where the Leases live.
	namespace string
	env       *testenv.Env
	// tracker is the controller's: renew waits until it saw a renewal.
	tracker *HeartbeatTracker
}

func startHarness(t *testing.T) *harness {
	return startHarnessWith(t, testr.NewWithOptions(t, testr.Options{Verbosity: 0}), nil)
}

// startHarnessWith starts the control plane and the controller, logging to
// logger; wrap, when set, wraps the controller's transport to the API server.
func startHarnessWith(t testing.TB, logger logr.Logger, wrap func(http.RoundTripper) http.RoundTripper) *harness {
	t.Helper()
	return startHarnessWatching(t, logger, wrap)
}

// startHarnessWatching is startHarnessWith with the controller watching
// the Secrets of secretNamespaces (as --farm-namespaces does).
func startHarnessWatching(t testing.TB, logger logr.Logger, wrap func(http.RoundTripper) http.RoundTripper, secretNamespaces ...string) *harness {
	t.Helper()
	// controller-runtime warns, with a stack, when a client is built before
	// its global logger is set; the manager logs through its own.
	ctrllog.SetLogger(logr.Discard())
	env := testenv.Start(t)
	// As ctrl.GetConfig does, leave rate limiting to the API server's
	// priority and fairness; client-go's default of 5 QPS would set the pace.
	unlimited := rest.CopyConfig(env.Config)
	unlimited.QPS = -1
	c, err := client.New(unlimited, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatalf("creating the test's client: %v", err)
	}
	h := &harness{t: t, ctx: t.Context(), c: c, clock: testingclock.NewFakeClock(time.Now()), namespace: "webfarm-test", env: env}
	h.createNamespace(h.namespace)
	cfg := rest.CopyConfig(unlimited)
	if wrap != nil {
		cfg.Wrap(wrap)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:     env.Scheme,
		Cache:      CacheOptions(h.namespace, secretNamespaces...),
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		Logger:     logger,
	})
	if err != nil {
		t.Fatalf("creating the manager: %v", err)
	}
	h.cache = mgr.GetCache()
	h.tracker = NewHeartbeatTracker(h.clock)
	if err := Setup(mgr, Options{Namespace: h.namespace, Clock: h.clock, Tracker: h.tracker, SecretNamespaces: secretNamespaces}); err != nil {
		t.Fatalf("setting up the controller: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	return h
}

func (h *harness) createNamespace(name string) {
	h.t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := h.c.Create(h.ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		h.t.Fatalf("creating namespace %s: %v", name, err)
	}
}

// eventually polls cond until it returns nil, failing t with its last error
// after pollTimeout.
func eventually(t testing.TB, what string, cond func() error) {
	t.Helper()
	eventuallyWithin(t, what, pollTimeout, 20*time.Millisecond, cond)
}

// eventuallyWithin polls cond every interval until it returns nil, failing t
// with its last error after timeout.
func eventuallyWithin(t testing.TB, what string, timeout, interval time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %v: %v", what, timeout, err)
		}
		time.Sleep(interval)
	}
}

// createNode creates a Node with labels and an InternalIP.
func (h *harness) createNode(name, ip string, labels map[string]string) {
	h.t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := h.c.Create(h.ctx, node); err != nil {
		h.t.Fatalf("creating Node %s: %v", name, err)
	}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}
	if err := h.c.Status().Update(h.ctx, node); err != nil {
		h.t.Fatalf("setting the addresses of Node %s: %v", name, err)
	}
	h.t.Cleanup(func() { _ = h.c.Delete(context.Background(), node) })
}

// patchNode merge-patches a Node's metadata, e.g. labels or annotations;
// a nil value removes the key.
func (h *harness) patchNode(name, field string, values map[string]any) {
	h.t.Helper()
	patch := fmt.Appendf(nil, `{"metadata":{%q:%s}}`, field, mustJSON(h.t, values))
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := h.c.Patch(h.ctx, node, client.RawPatch(types.MergePatchType, patch)); err != nil {
		h.t.Fatalf("patching the %s of Node %s: %v", field, name, err)
	}
}

func (h *harness) annotateDrain(node string, value any) {
	h.t.Helper()
	h.patchNode(node, "annotations", map[string]any{webfarmv1.DrainAnnotation: value})
}

// createFarm creates a WebFarm selecting nodes labelled with selector. It
// goes through unstructured so that the API server applies the defaults
// (typed zero durations would be sent as "0s").
func (h *harness) createFarm(namespace, name string, selector map[string]string, fips ...string) {
	h.t.Helper()
	spec := map[string]any{"frontSelector": map[string]any{"matchLabels": selector}}
	if len(fips) > 0 {
		spec["failoverIPs"] = fips
	}
	farm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": webfarmv1.GroupVersion.String(), "kind": "WebFarm",
		"metadata": map[string]any{"namespace": namespace, "name": name},
		"spec":     spec,
	}}
	if err := h.c.Create(h.ctx, farm); err != nil {
		h.t.Fatalf("creating WebFarm %s/%s: %v", namespace, name, err)
	}
}

// createFailoverIP creates a FailoverIP with deadtime 2s and guard 500ms.
func (h *harness) createFailoverIP(namespace, name, address, preferred string, autoFailback bool) {
	h.t.Helper()
	fip := &webfarmv1.FailoverIP{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: webfarmv1.FailoverIPSpec{
			Address: address, PreferredNode: preferred, AutoFailback: autoFailback,
			Keepalive: metav1.Duration{Duration: 500 * time.Millisecond},
			Deadtime:  metav1.Duration{Duration: testDeadtime},
			Guard:     metav1.Duration{Duration: testGuard},
		},
	}
	if err := h.c.Create(h.ctx, fip); err != nil {
		h.t.Fatalf("creating FailoverIP %s/%s: %v", namespace, name, err)
	}
}

// activePair creates two renewing nodes labelled role=<role> and a farm
// "site" in ns over them listing fips, and waits until both are Active:
// then a first election sees both.
func (h *harness) activePair(ns, role string, nodes, ips [2]string, fips ...string) {
	h.t.Helper()
	h.createNamespace(ns)
	for i, n := range nodes {
		h.createNode(n, ips[i], map[string]string{"role": role})
	}
	for _, n := range nodes {
		h.renew(n)
	}
	h.createFarm(ns, "site", map[string]string{"role": role}, fips...)
	for _, n := range nodes {
		h.phase(n, webfarmv1.FrontActive)
	}
}

// renew creates or renews node's heartbeat Lease, as its agent does.
func (h *harness) renew(node string) {
	h.t.Helper()
	lease := &coordinationv1.Lease{}
	key := types.NamespacedName{Namespace: h.namespace, Name: webfarmv1.NodeLeaseName(node)}
	now := metav1.NewMicroTime(time.Now())
	err := h.c.Get(h.ctx, key, lease)
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(node), RenewTime: &now},
		}
		err = h.c.Create(h.ctx, lease)
	} else if err == nil {
		lease.Spec.RenewTime = &now
		err = h.c.Update(h.ctx, lease)
	}
	if err != nil {
		h.t.Fatalf("renewing the Lease of %s: %v", node, err)
	}
	// A live agent renews all the time; a test renews once, then moves the
	// fake clock on. It must not move it before the controller saw the
	// renewal, or the renewal would look later than it was.
	eventually(h.t, "the controller sees the renewal of "+node, func() error {
		renewed, _ := leaseRenewal(lease, node)
		if seen := h.tracker.Seen(node); seen != renewed {
			return fmt.Errorf("seen renewal %q, renewed %q", seen, renewed)
		}
		return nil
	})
}

// patchFrontStatus merge-patches the agent's keys of a FrontNode's status.
func (h *harness) patchFrontStatus(node string, status map[string]any) {
	h.t.Helper()
	patch := fmt.Appendf(nil, `{"status":%s}`, mustJSON(h.t, status))
	front := &webfarmv1.FrontNode{ObjectMeta: metav1.ObjectMeta{Name: node}}
	if err := h.c.Status().Patch(h.ctx, front, client.RawPatch(types.MergePatchType, patch)); err != nil {
		h.t.Fatalf("patching the status of FrontNode %s as its agent: %v", node, err)
	}
}

// front waits until FrontNode node satisfies cond and returns it.
func (h *harness) front(node, what string, cond func(*webfarmv1.FrontNode) error) *webfarmv1.FrontNode {
	h.t.Helper()
	front := &webfarmv1.FrontNode{}
	eventually(h.t, fmt.Sprintf("FrontNode %s: %s", node, what), func() error {
		if err := h.c.Get(h.ctx, types.NamespacedName{Name: node}, front); err != nil {
			return err
		}
		return cond(front)
	})
	return front
}

func (h *harness) frontGone(node string) {
	h.t.Helper()
	eventually(h.t, "FrontNode "+node+" deleted", func() error {
		err := h.c.Get(h.ctx, types.NamespacedName{Name: node}, &webfarmv1.FrontNode{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			return errors.New("still exists")
		}
		return err
	})
}

// phase waits until FrontNode node is in phase.
func (h *harness) phase(node string, phase webfarmv1.FrontPhase) *webfarmv1.FrontNode {
	h.t.Helper()
	return h.front(node, "phase "+string(phase), func(f *webfarmv1.FrontNode) error {
		if f.Status.Phase != phase {
			return fmt.Errorf("phase %q", f.Status.Phase)
		}
		return nil
	})
}

// failoverIP waits until FailoverIP namespace/name satisfies cond and
// returns it.
func (h *harness) failoverIP(namespace, name, what string, cond func(*webfarmv1.FailoverIPStatus) error) *webfarmv1.FailoverIP {
	h.t.Helper()
	fip := &webfarmv1.FailoverIP{}
	eventually(h.t, fmt.Sprintf("FailoverIP %s/%s: %s", namespace, name, what), func() error {
		if err := h.c.Get(h.ctx, types.NamespacedName{Namespace: namespace, Name: name}, fip); err != nil {
			return err
		}
		return cond(&fip.Status)
	})
	return fip
}

// event waits for an event of type and reason regarding the named object.
func (h *harness) event(kind, name, eventType, reason string) *eventsv1.Event {
	h.t.Helper()
	var found *eventsv1.Event
	eventually(h.t, fmt.Sprintf("%s event %s on %s %s", eventType, reason, kind, name), func() error {
		var list eventsv1.EventList
		if err := h.c.List(h.ctx, &list); err != nil {
			return err
		}
		i := slices.IndexFunc(list.Items, func(e eventsv1.Event) bool {
			return e.Regarding.Kind == kind && e.Regarding.Name == name && e.Type == eventType && e.Reason == reason
		})
		if i < 0 {
			return fmt.Errorf("none among %d events", len(list.Items))
		}
		found = &list.Items[i]
		return nil
	})
	return found
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encoding %v: %v", v, err)
	}
	return b
}

// hold reports, as node's agent, that it holds FailoverIP namespace/name at
// epoch, as a real agent does once it announces the address: a front that
// never says so looks, to the controller, like an owner still waiting.
func (h *harness) hold(node, namespace, name string, epoch int64) {
	h.t.Helper()
	h.patchFrontStatus(node, map[string]any{"failoverIPs": []webfarmv1.NodeFailoverIPStatus{{
		Name: farmKey(namespace, name), UID: h.failoverIPUID(namespace, name), Epoch: epoch, State: webfarmv1.VIPHolding,
	}}})
}

// reportUnheard reports, as voter's agent, that it has not heard the owner
// of FailoverIP namespace/name at epoch for after (its deadtime): it will
// never vouch for that owner again at that epoch.
func (h *harness) reportUnheard(voter, namespace, name string, epoch int64, after time.Duration) {
	h.t.Helper()
	h.patchFrontStatus(voter, map[string]any{"failoverIPs": []webfarmv1.NodeFailoverIPStatus{{
		Name: farmKey(namespace, name), UID: h.failoverIPUID(namespace, name), Epoch: epoch,
		State: webfarmv1.VIPOwnerUnheard, UnheardAfter: &metav1.Duration{Duration: after},
	}}})
}

// failoverIPUID is the UID agents name in their reports.
func (h *harness) failoverIPUID(namespace, name string) types.UID {
	h.t.Helper()
	fip := &webfarmv1.FailoverIP{}
	if err := h.c.Get(h.ctx, types.NamespacedName{Namespace: namespace, Name: name}, fip); err != nil {
		h.t.Fatalf("reading FailoverIP %s/%s: %v", namespace, name, err)
	}
	return fip.UID
}

// votersAre: status.voters is want.
func votersAre(want ...string) func(*webfarmv1.FailoverIPStatus) error {
	return func(st *webfarmv1.FailoverIPStatus) error {
		if !slices.Equal(st.Voters, want) {
			return fmt.Errorf("voters %v, want %v", st.Voters, want)
		}
		return nil
	}
}

// allOf is a FailoverIP condition holding when every one of conds holds.
func allOf(conds ...func(*webfarmv1.FailoverIPStatus) error) func(*webfarmv1.FailoverIPStatus) error {
	return func(st *webfarmv1.FailoverIPStatus) error {
		for _, c := range conds {
			if err := c(st); err != nil {
				return err
			}
		}
		return nil
	}
}

// testPresence is how long after its last renewal a front of the test
// timing still counts as present (webfarmv1.PresenceWindow): it is Down
// only after it.
var testPresence = webfarmv1.PresenceWindow(testDeadtime)
