// Command webfarm-agent runs on every front: it keeps the node's HAProxy, its
// DNAT drain chain and the failover addresses it owns in line with the
// WebFarm, FrontNode and FailoverIP objects. `webfarm-agent cleanup` removes
// all of that from the node; `webfarm-agent haproxy` becomes the HAProxy
// master that runs beside an agent started with --haproxy-beside.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/webfarm/webfarm/agent"
	"github.com/webfarm/webfarm/agent/prestop"
	"github.com/webfarm/webfarm/agent/priority"
	"github.com/webfarm/webfarm/agent/sweep"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/linequeue"
	"github.com/webfarm/webfarm/internal/metrics"
)

const usage = `Usage: webfarm-agent [flags]
       webfarm-agent cleanup [--state-dir DIR] [--haproxy-binary PATH] [--haproxy-beside]
       webfarm-agent haproxy [--state-dir DIR] [--haproxy-binary PATH]
       webfarm-agent haproxy-ready [--state-dir DIR]
       webfarm-agent haproxy-prestop [--state-dir DIR] [--timeout DURATION]
       webfarm-agent sweep --fronts SELECTOR --running SELECTOR --pod-template FILE [--namespace NS]

Runs the webfarm agent of one node (normally a DaemonSet pod with host
networking and the NET_ADMIN and NET_RAW capabilities). "cleanup" removes
from the node everything the agent created: its HAProxy, its nat chain and
the jump to it, the failover addresses it added, its state directory. "haproxy" execs
HAProxy's master in the foreground on --state-dir, for a container of its
own beside an agent run with --haproxy-beside: HAProxy then outlives the
agent's container. "haproxy-ready" succeeds while that HAProxy serves (its
readiness probe). "haproxy-prestop" (its preStop hook) asks the agent to hand
the node's failover addresses off and waits until it has, or --timeout. "sweep", at helm uninstall, runs the cleanup pod of
--pod-template on every front: the nodes --fronts selects and those the
pods --running selects are on, each once those pods are gone from it.

Flags:
`

type flags struct {
	agent.Options
	metricsAddr, probeAddr string
	nice                   int
	metrics                metrics.Serving
	zap                    zap.Options
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "cleanup" {
		os.Exit(runCleanup(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "haproxy" {
		os.Exit(runHAProxy(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "haproxy-ready" {
		os.Exit(runHAProxyReady(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "haproxy-prestop" {
		os.Exit(runHAProxyPreStop(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "sweep" {
		os.Exit(runSweep(os.Args[2:]))
	}
	f := parseFlags(flag.CommandLine, os.Args[1:])
	// The log goes through a queue: a stderr that blocks (a stalled disk
	// behind the container's log) must not stop the decisions that log.
	logs := linequeue.New(os.Stderr, 0)
	f.zap.DestWriter, f.Log = logs, logs
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&f.zap)))
	err := run(ctrl.SetupSignalHandler(), f)
	if err != nil {
		ctrl.Log.Error(err, "webfarm-agent failed")
	}
	logs.Close()
	if err != nil {
		os.Exit(1)
	}
}

func parseFlags(fs *flag.FlagSet, args []string) flags {
	var f flags
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	fs.StringVar(&f.NodeName, "node-name", os.Getenv("NODE_NAME"), "the node this agent runs on (default $NODE_NAME)")
	fs.StringVar(&f.Namespace, "namespace", agent.DefaultNamespace, "the operator namespace: node Leases and the peer Secret")
	fs.StringVar(&f.PeerSecret, "peer-secret", agent.DefaultPeerSecret, "Secret whose key \""+agent.PeerSecretKey+"\" authenticates agent-to-agent heartbeats")
	fs.IntVar(&f.PeerPort, "peer-port", agent.DefaultPeerPort, "UDP port of agent-to-agent heartbeats")
	fs.StringVar(&f.PeerAddress, "peer-bind-address", "", "the node's own address (its FrontNode's), where agent-to-agent heartbeats listen; empty: every address, the failover addresses included")
	fs.DurationVar(&f.PeerKeyMaxAge, "peer-key-max-age", agent.DefaultPeerKeyMaxAge, "age at which the node's own key, which signs its peer heartbeats, is rotated; negative: never")
	fs.StringVar(&f.FailoverHook, "failover-hook", "", "absolute path of an executable run at every takeover and release of a failover address")
	fs.StringVar(&f.ChecksDir, "checks-dir", "", "directory of the scripts that FailoverIPs' exec health checks may name")
	fs.StringVar(&f.HooksDir, "hooks-dir", "", "directory of the notify hooks (master, backup, fault) that FailoverIPs may name")
	fs.DurationVar(&f.ShutdownGrace, "shutdown-grace", agent.DefaultShutdownGrace, "time given to the planned hand-off of the failover addresses at shutdown")
	fs.DurationVar(&f.Resync, "resync", agent.DefaultResync, "period of the full rewrite of the node's state")
	fs.StringVar(&f.HAProxyMetrics, "haproxy-metrics", agent.DefaultHAProxyMetrics, "where HAProxy serves its Prometheus exporter at /metrics: node:PORT (the node's address), IP:PORT, or off")
	fs.BoolVar(&f.DisableAccessLog, "no-access-log", false, "do not write HAProxy's access log (one httplog line per request) to stdout")
	fs.StringVar(&f.NginxDir, "nginx-dir", "", "directory of nginx's configuration the agent owns for the Sites' vhosts (nginx.conf must include <dir>/*.conf in http {}); empty: nginx is left alone")
	fs.StringVar(&f.NginxBinary, "nginx-binary", "nginx", "the nginx executable")
	fs.StringVar(&f.NginxConfig, "nginx-config", "", "nginx's main configuration file, given to nginx -t and nginx -s reload as -c; empty: nginx's default")
	fs.StringVar(&f.RsyncBinary, "rsync-binary", "rsync", "the rsync executable that syncs the farms' upload directories")
	fs.StringVar(&f.NginxAccessLog, "nginx-access-log", agent.DefaultNginxAccessLog, "the file the Sites' vhosts log to")
	fs.BoolVar(&f.WatchSecrets, "watch-secrets", false, "watch the Secrets of the Sites' certificates (list and watch of Secrets in the farm namespaces), so that a renewal reaches HAProxy at once rather than at the next resync")
	fs.BoolVar(&f.ChecksOnly, "checks-only", false, "leave dead fronts to HAProxy's checks: do not mark down the servers of a front whose heartbeats went silent")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":8083", "address of the metrics endpoint; 0 disables it")
	f.metrics.BindFlags(fs)
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8082", "address of /healthz and /readyz; 0 disables them")
	fs.IntVar(&f.nice, "nice", priority.DefaultNice, "the nice value the agent runs at, ahead of the node's workload so that its heartbeats and decisions keep their deadlines (needs CAP_SYS_NICE below 0); the programs it starts run at 0; 0 leaves the agent at the normal priority")
	addNodeFlags(fs, &f.Options)
	f.zap.BindFlags(fs)
	// The kubeconfig flag is registered by controller-runtime's config package.
	_ = fs.Parse(args)
	return f
}

// addNodeFlags registers the flags that `cleanup` shares with the agent.
func addNodeFlags(fs *flag.FlagSet, o *agent.Options) {
	fs.StringVar(&o.StateDir, "state-dir", agent.DefaultStateDir, "HAProxy's files and the agent's records; must outlive the agent (host /run)")
	fs.StringVar(&o.HAProxyBinary, "haproxy-binary", "haproxy", "the haproxy executable")
	fs.BoolVar(&o.HAProxyBeside, "haproxy-beside", false, "HAProxy runs beside the agent (`webfarm-agent haproxy` in a container of its own), not as its child: the agent installs, validates and reloads its configuration but never starts or ends it")
}

func run(ctx context.Context, f flags) error {
	raisePriority(ctx, f.nice)
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := webfarmv1.AddToScheme(scheme); err != nil {
		return err
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 f.metrics.Options(f.metricsAddr),
		HealthProbeBindAddress:  f.probeAddr,
		GracefulShutdownTimeout: ptr(f.ShutdownGrace + 5*time.Second),
	})
	if err != nil {
		return err
	}
	// The manager's cache holds only the agent's three kinds; Secrets,
	// ConfigMaps, the Lease and the status reports go through api, without
	// a cluster-wide watch, and with a timeout on every request.
	api, err := agent.NewAPIClient(cfg, scheme)
	if err != nil {
		return err
	}
	a, err := agent.New(mgr, api, f.Options)
	if err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", a.ReadyCheck); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// parseNodeFlags parses the flags of a subcommand that needs the node's
// options only.
func parseNodeFlags(name string, args []string) (agent.Options, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var o agent.Options
	addNodeFlags(fs, &o)
	return o, fs.Parse(args) == nil
}

func runCleanup(args []string) int {
	o, ok := parseNodeFlags("cleanup", args)
	if !ok {
		return 2
	}
	if err := agent.Cleanup(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "webfarm-agent cleanup:", err)
		return 1
	}
	return 0
}

// runHAProxy replaces this process with HAProxy's master; it returns only
// when it could not.
func runHAProxy(args []string) int {
	o, ok := parseNodeFlags("haproxy", args)
	if !ok {
		return 2
	}
	o.HAProxyBeside = true
	// A HAProxy that starts serves again: the agent may hold addresses.
	if err := prestop.Withdraw(o.StateDir); err != nil {
		fmt.Fprintln(os.Stderr, "webfarm-agent haproxy: withdrawing the hand-off request:", err)
		return 1
	}
	err := o.HAProxy().ExecBeside()
	fmt.Fprintln(os.Stderr, "webfarm-agent haproxy:", err)
	return 1
}

// runHAProxyReady is the readiness probe of the HAProxy beside the agent.
func runHAProxyReady(args []string) int {
	o, ok := parseNodeFlags("haproxy-ready", args)
	if !ok {
		return 2
	}
	o.HAProxyBeside = true
	ctx, cancel := context.WithTimeout(context.Background(), haproxyReadyTimeout)
	defer cancel()
	if err := o.HAProxy().Ready(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "webfarm-agent haproxy-ready:", err)
		return 1
	}
	return 0
}

// haproxyReadyTimeout is below the chart's probe timeout (5 s), so that the
// probe fails with a message rather than be cut short.
const haproxyReadyTimeout = 4 * time.Second

// runHAProxyPreStop is the preStop hook of the HAProxy beside the agent: it
// asks the agent to hand the node's addresses off and waits until it has,
// so that HAProxy stops with no client of a failover address on it. Past
// --timeout, or once no agent has run for --agent-gone (it crashed and was
// not restarted in time), HAProxy stops anyway.
func runHAProxyPreStop(args []string) int {
	fs := flag.NewFlagSet("haproxy-prestop", flag.ContinueOnError)
	var o agent.Options
	addNodeFlags(fs, &o)
	timeout := fs.Duration("timeout", 20*time.Second, "longest wait for the hand-off; keep it below the pod's terminationGracePeriodSeconds")
	gone := fs.Duration("agent-gone", 5*time.Second, "stop waiting once no agent has run on the node for this long")
	if fs.Parse(args) != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	if err := prestop.Await(ctx, o.StateDir, 100*time.Millisecond, *gone); err != nil {
		fmt.Fprintf(os.Stderr, "webfarm-agent haproxy-prestop: HAProxy stops with the node's failover addresses not handed off: %v\n", err)
		return 1
	}
	fmt.Printf("webfarm-agent haproxy-prestop: the node's failover addresses handed off in %s\n", time.Since(start).Round(time.Millisecond))
	return 0
}

// runSweep cleans every front of a release being uninstalled.
func runSweep(args []string) int {
	fs := flag.NewFlagSet("sweep", flag.ContinueOnError)
	var fronts, running, template string
	var opts zap.Options
	s := sweep.Sweep{Namespace: agent.DefaultNamespace}
	fs.StringVar(&s.Namespace, "namespace", s.Namespace, "the release namespace: its pods and the cleanup pods")
	fs.StringVar(&fronts, "fronts", "", "label selector of the fronts (the agent's nodeSelector)")
	fs.StringVar(&running, "running", "", "label selector of the release's pods on the fronts (agent and HAProxy)")
	fs.StringVar(&template, "pod-template", "", "YAML or JSON file of the cleanup pod; each node's copy is named and bound to it")
	timeout := fs.Duration("timeout", 4*time.Minute, "time given to the whole sweep")
	opts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	if err := sweepFronts(&s, fronts, running, template, *timeout); err != nil {
		ctrl.Log.Error(err, "webfarm-agent sweep failed")
		return 1
	}
	return 0
}

func sweepFronts(s *sweep.Sweep, fronts, running, template string, timeout time.Duration) error {
	var err error
	if s.Fronts, err = labels.Parse(fronts); err != nil {
		return fmt.Errorf("--fronts: %w", err)
	}
	if s.Running, err = labels.Parse(running); err != nil || running == "" {
		return fmt.Errorf("--running must select the release's pods: %q: %v", running, err)
	}
	raw, err := os.ReadFile(template)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(raw, &s.Template); err != nil {
		return fmt.Errorf("--pod-template %s: %w", template, err)
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	if s.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctrl.SetupSignalHandler(), timeout)
	defer cancel()
	return s.Run(logr.NewContext(ctx, ctrl.Log.WithName("sweep")))
}

func ptr[T any](v T) *T { return &v }

// raisePriority runs the agent at nice, or says why it cannot: the agent
// still works at the normal priority, only its deadlines are at the mercy
// of the node's load.
func raisePriority(ctx context.Context, nice int) {
	if nice == 0 {
		return
	}
	log := ctrl.Log.WithName("priority")
	if err := priority.Keep(ctx, nice, time.Second); err != nil {
		log.Error(err, "Running at the normal priority: a busy node may delay heartbeats past the guard (grant CAP_SYS_NICE, or set --nice 0)")
		return
	}
	log.Info("Running ahead of the node's workload", "nice", nice)
}
