// Command webfarm-controller runs the webfarm operator's controller: it keeps
// a FrontNode per front, mirrors the drain annotation and elects the owner of
// every FailoverIP. See docs/architecture.md.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/controllers"
	"github.com/webfarm/webfarm/internal/metrics"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "webfarm-controller:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		namespace, electionID, metricsAddr, probeAddr string
		leaderElect                                   bool
		metricsServing                                metrics.Serving
		farmNamespaces                                []string
		leaseDuration, renewDeadline, retryPeriod     time.Duration
	)
	// --kubeconfig is registered by controller-runtime's config package.
	flag.StringVar(&namespace, "namespace", controllers.DefaultNamespace, "Operator namespace: where the nodes' heartbeat Leases and the leader-election Lease live.")
	flag.BoolVar(&leaderElect, "leader-elect", true, "Elect a leader, so that only one controller acts at a time.")
	flag.StringVar(&electionID, "leader-election-id", "webfarm-controller.webfarm.io", "Name of the leader-election Lease.")
	// Shorter than controller-runtime's 15s/10s/2s: a hard loss of the node
	// that runs the leader moves no failover address until a standby leads,
	// and that took 16 s on a real cluster (test/cluster).
	flag.DurationVar(&leaseDuration, "leader-election-lease-duration", 5*time.Second, "How long a standby waits after the leader's last renewal before it takes over: the longest a lost leader's node delays a failover.")
	flag.DurationVar(&renewDeadline, "leader-election-renew-deadline", 4*time.Second, "How long the leader retries a renewal before it gives up leading and exits; below the lease duration.")
	flag.DurationVar(&retryPeriod, "leader-election-retry-period", time.Second, "How often the leader renews, and a standby tries to take over.")
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address the metrics endpoint binds to; \"0\" disables it.")
	metricsServing.BindFlags(flag.CommandLine)
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the health and readiness probes bind to.")
	flag.Func("farm-namespaces", "Comma-separated namespaces holding Sites, where the controller may list and watch Secrets: a change of a certificate's Secret reaches its Site's status at once. Empty: certificates are read again every 5 minutes.", func(v string) error {
		// An empty name would be every namespace, which RBAC does not grant.
		for _, ns := range strings.Split(v, ",") {
			if ns = strings.TrimSpace(ns); ns != "" {
				farmNamespaces = append(farmNamespaces, ns)
			}
		}
		return nil
	})
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := webfarmv1.AddToScheme(scheme); err != nil {
		return err
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading the kubeconfig: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   controllers.CacheOptions(namespace, farmNamespaces...),
		Metrics:                 metricsServing.Options(metricsAddr),
		HealthProbeBindAddress:  probeAddr,
		LeaderElection:          leaderElect,
		LeaderElectionID:        electionID,
		LeaderElectionNamespace: namespace,
		// The next leader starts at once when this one stops cleanly.
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &leaseDuration,
		RenewDeadline:                 &renewDeadline,
		RetryPeriod:                   &retryPeriod,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := controllers.Setup(mgr, controllers.Options{Namespace: namespace, SecretNamespaces: farmNamespaces}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}
