package controllers

import (
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/webfarm/webfarm/internal/metrics"
)

// DefaultNamespace is the operator namespace when none is given: where the
// nodes' heartbeat Leases and the leader-election Lease live.
const DefaultNamespace = "webfarm-system"

// ControllerName names the controller in events and as a field manager.
const ControllerName = "webfarm-controller"

// Options configure the controller.
type Options struct {
	// Namespace is the operator namespace, where agents renew their nodes'
	// heartbeat Leases. DefaultNamespace when empty.
	Namespace string
	// Clock judges heartbeats and times the wake-ups at which they turn
	// stale; the real clock when nil. Tests pass a fake one.
	Clock clock.WithDelayedExecution
	// Tracker records the Lease sightings; a new one on Clock when nil.
	// Tests pass their own to know when a renewal has been seen before
	// they move a fake clock on.
	Tracker *HeartbeatTracker
	// SecretNamespaces are the namespaces whose Secrets the Site
	// controller watches, by their metadata alone, so that a renewed or
	// broken certificate reaches its Site's status at once. The cache must
	// be built with the same namespaces. Empty: certificates are read again
	// every siteRecheck.
	SecretNamespaces []string
}

// CacheOptions are the manager cache options the controller needs: Leases
// watched in the operator namespace only, Secrets (their metadata) in
// secretNamespaces only, where RBAC lets the controller list them, and
// managed fields dropped to save memory. Pass them as
// manager.Options.Cache.
func CacheOptions(namespace string, secretNamespaces ...string) cache.Options {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	o := cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&coordinationv1.Lease{}: {Namespaces: map[string]cache.Config{namespace: {}}},
		},
	}
	if len(secretNamespaces) > 0 {
		secrets := map[string]cache.Config{}
		for _, ns := range secretNamespaces {
			if ns != "" { // "" would be every namespace
				secrets[ns] = cache.Config{}
			}
		}
		o.ByObject[&corev1.Secret{}] = cache.ByObject{Namespaces: secrets}
	}
	return o
}

// Setup adds the FrontNode, FailoverIP and WebFarm reconcilers, their field
// indexes and watches to mgr. The manager's cache must be built with
// CacheOptions(opts.Namespace).
func Setup(mgr manager.Manager, opts Options) error {
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Tracker == nil {
		opts.Tracker = NewHeartbeatTracker(opts.Clock)
	}
	if err := addIndexes(mgr); err != nil {
		return err
	}
	s := &shared{
		Client:    mgr.GetClient(),
		events:    mgr.GetEventRecorder(ControllerName),
		clock:     opts.Clock,
		tracker:   opts.Tracker,
		deadtimes: newFrontDeadtimes(),
		namespace: opts.Namespace,
	}
	if err := metrics.RegisterController(); err != nil {
		return fmt.Errorf("registering the metrics: %w", err)
	}
	if err := metrics.Register(newStateCollector(mgr.GetCache())); err != nil {
		return fmt.Errorf("registering the state metrics: %w", err)
	}
	if err := setupFrontNodes(mgr, s); err != nil {
		return fmt.Errorf("setting up the FrontNode controller: %w", err)
	}
	if err := setupFailoverIPs(mgr, s); err != nil {
		return fmt.Errorf("setting up the FailoverIP controller: %w", err)
	}
	if err := setupWebFarms(mgr, s); err != nil {
		return fmt.Errorf("setting up the WebFarm controller: %w", err)
	}
	if err := setupSites(mgr, s, opts.SecretNamespaces); err != nil {
		return fmt.Errorf("setting up the Site controller: %w", err)
	}
	return nil
}

// shared is what the three reconcilers have in common: one heartbeat
// tracker fed by the Lease watches, and what it needs to judge freshness.
type shared struct {
	client.Client
	events    events.EventRecorder
	clock     clock.WithDelayedExecution
	tracker   *HeartbeatTracker
	deadtimes *frontDeadtimes
	namespace string
}
