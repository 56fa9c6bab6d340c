package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/webfarm/webfarm/agent/accesslog"
	"github.com/webfarm/webfarm/agent/checks"
	"github.com/webfarm/webfarm/agent/deadfront"
	"github.com/webfarm/webfarm/agent/deadman"
	"github.com/webfarm/webfarm/agent/handoff"
	"github.com/webfarm/webfarm/agent/haproxy"
	"github.com/webfarm/webfarm/agent/heartbeat"
	"github.com/webfarm/webfarm/agent/iptables"
	"github.com/webfarm/webfarm/agent/nginx"
	"github.com/webfarm/webfarm/agent/secretwatch"
	"github.com/webfarm/webfarm/agent/uploads"
	"github.com/webfarm/webfarm/agent/vip"
	"github.com/webfarm/webfarm/agent/witness"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/metrics"
)

// watchRetry paces the attempts to reach the API server at start.
const watchRetry = 2 * time.Second

// Agent is the node agent of one node. It runs as a manager.Runnable: the
// manager provides the informer cache of WebFarms, FrontNodes and
// FailoverIPs, the health probes and the metrics.
type Agent struct {
	opts  Options
	clock clock.WithTicker
	log   logr.Logger

	// cache is the manager's informer cache: farms, fronts, failover IPs.
	cache     client.Reader
	informers cache.Informers
	// api reaches the API server directly: Secrets, ConfigMaps, Leases and
	// status patches never go through a cluster-wide informer.
	api client.Client

	proxy      *haproxy.Process
	proxyState proxyState
	// deadFronts marks the servers of dead fronts down in the proxy.
	deadFronts *deadfront.Marker
	drain      *iptables.DrainChain
	vips       *vip.Manager
	lease      *heartbeat.LeaseRenewer
	// witness proves an owner alive through the API server when its peers
	// do not vouch for it (status.ownerWitness).
	witness  *witness.Witness
	peers    *heartbeat.Peers
	identity *heartbeat.Identity
	// peerKeysWritten are the peer keys last written by writePeerKeys,
	// which the cache may not show yet; runPeerIdentity's alone.
	peerKeysWritten []string
	// peerAddressWarned is the FrontNode address last found to differ
	// from where the peer heartbeats listen; runPeerIdentity's alone.
	peerAddressWarned string
	promises          *promiseFile
	reporter          *reporter
	refs              *references
	failover          *failover
	serving           *servingChecks
	checks            *checks.Runner
	lastOwners        lastOwners
	obs               *observer
	// accessLog relays HAProxy's access log to stdout; nil when disabled.
	accessLog *accesslog.Relay
	// nginx is the node's web server, whose Sites' vhosts the agent keeps;
	// nil when the agent leaves it alone.
	nginx *nginx.Process
	// uploads keeps the farms' declared directories in step with the
	// other fronts; uploadProblems are what it could not set up.
	uploads        *uploads.Manager
	uploadProblems []string
	// uploadsCaughtUpSeen is the catch-up of every directory as the node
	// loop last drained by it.
	uploadsCaughtUpSeen string
	// vhosts is what nginx serves of each Site, for the node's report.
	vhosts vhostState
	// secrets wakes the agent when a served Site's Secret changes; nil
	// when the agent reads them at each resync only.
	secrets *secretwatch.Watch

	// ready is set once the agent has its first view of the cluster.
	ready atomic.Bool
	// wake is signalled when the cache changes, so that the agent acts on a
	// change at once rather than at the next tick.
	wake chan struct{}
	// identityWake is wake for the peer identity (runPeerIdentity).
	identityWake chan struct{}
	// report is signalled when a loop changed the report, which the
	// publisher then writes (runPublisher).
	report chan struct{}
}

// New builds the agent of opts.NodeName and adds it to mgr. api must be a
// client that does not read through the manager's cache.
func New(mgr manager.Manager, api client.Client, opts Options) (*Agent, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &Agent{
		opts:     opts,
		clock:    clock.RealClock{},
		cache:    mgr.GetCache(),
		api:      api,
		proxy:    opts.HAProxy(),
		reporter: &reporter{client: api, node: opts.NodeName},
		refs:     newReferences(api),
		wake:     make(chan struct{}, 1),
		report:   make(chan struct{}, 1),

		identityWake: make(chan struct{}, 1),
	}
	if a.drain, err = iptables.New(); err != nil {
		return nil, fmt.Errorf("drain chain: %w", err)
	}
	a.obs = newObserver(opts.NodeName, a.clock, mgr.GetCache(), mgr.GetEventRecorder(EventSource))
	a.reporter.observe = a.obs.reported
	if a.vips, err = newVIPManager(opts, mgr.GetLogger().WithName("agent")); err != nil {
		return nil, err
	}
	a.vips.Announcer = observedAnnouncer{next: vip.PacketAnnouncer{}, seen: a.obs.announced}
	a.vips.Notified = a.notified
	a.lastOwners.promotedAt = a.vips.PromotedAt
	if a.accessLog, err = listenAccessLog(opts, a.proxy); err != nil {
		return nil, err
	}
	if a.serving, err = newServingChecks(); err != nil {
		return nil, err
	}
	a.checks = checks.NewRunner(a.clock)
	a.lease = &heartbeat.LeaseRenewer{
		Client: api, Namespace: opts.Namespace, Node: opts.NodeName,
		Interval: func() time.Duration { return a.failover.leaseInterval() },
		Clock:    a.clock,
	}
	listen, err := opts.peerListen()
	if err != nil {
		return nil, err
	}
	if a.peers, err = heartbeat.NewPeers(opts.NodeName, listen, a.clock); err != nil {
		return nil, fmt.Errorf("peer heartbeats on UDP port %d: %w", opts.PeerPort, err)
	}
	a.deadFronts = &deadfront.Marker{Runtime: a.proxy}
	if opts.NginxDir != "" {
		a.nginx = &nginx.Process{Binary: opts.NginxBinary, Dir: opts.NginxDir, MainConfig: opts.NginxConfig}
	}
	a.uploads = &uploads.Manager{StateDir: opts.uploadsDir(), Self: opts.NodeName, Binary: opts.RsyncBinary,
		Propagated: func(d time.Duration) { metrics.UploadsPropagation.Observe(d.Seconds()) }}
	if opts.WatchSecrets {
		if a.secrets, err = newSecretWatch(mgr, a.refs, a.poke); err != nil {
			return nil, err
		}
	}
	a.failover = newFailover(a, opts.memoryPath())
	a.witness = &witness.Witness{Client: api, Node: opts.NodeName, Clock: a.clock, Proved: a.failover.poke,
		Written: func(result string, took time.Duration) {
			metrics.Witnesses.WithLabelValues(result).Observe(took.Seconds())
		}}
	a.vips.HandedOff = a.failover.poke
	a.informers = mgr.GetCache()
	a.log = mgr.GetLogger().WithName("agent")
	// Before anything is sent: a confirmation is a promise, kept across
	// restarts.
	a.promises = &promiseFile{path: opts.promisesPath(), withdrawalsPath: opts.withdrawalsPath()}
	if err := a.promises.load(a.clock.Now()); err != nil {
		a.log.Error(err, "Reading the peer promises")
	}
	a.peers.SetPromises(a.promises)
	if err := a.setUpPeerIdentity(); err != nil {
		return nil, fmt.Errorf("peer identity: %w", err)
	}
	if err := a.registerMetrics(); err != nil {
		return nil, err
	}
	if err := mgr.AddMetricsServerExtraHandler(metrics.HAProxyPath, exporterProxy{opts: opts, cache: a.cache}); err != nil {
		return nil, fmt.Errorf("serving HAProxy's exporter: %w", err)
	}
	return a, mgr.Add(a)
}

// EventSource names the agent in the events it records.
const EventSource = "webfarm-agent"

// listenAccessLog binds the socket HAProxy sends its access log to, unless
// the log is disabled. HAProxy runs in a session of its own and outlives the
// agent, so its stdout cannot be the agent's: it sends each line to this
// socket without blocking, and drops it while nobody listens.
func listenAccessLog(opts Options, proxy *haproxy.Process) (*accesslog.Relay, error) {
	if opts.DisableAccessLog {
		return nil, nil
	}
	if err := os.MkdirAll(proxy.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	return accesslog.Listen(proxy.LogSocket(), os.Stdout, 0)
}

// registerMetrics adds the collectors that read the agent's counters at
// each scrape.
func (a *Agent) registerMetrics() error {
	if err := metrics.RegisterAgent(); err != nil {
		return err
	}
	cs := []prometheus.Collector{newPeerCollector(a.peers.Stats), newUploadsCollector(a.uploads.Statuses, a.clock.Now)}
	if a.accessLog != nil {
		cs = append(cs, accessLogCollector(a.accessLog))
	}
	if a.opts.Log != nil {
		cs = append(cs, logCollector(a.opts.Log))
	}
	return metrics.Register(cs...)
}

func newVIPManager(opts Options, log logr.Logger) (*vip.Manager, error) {
	handle, err := netlink.NewHandle(vip.DiagFamilies...)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	gate, err := deadman.New()
	if err != nil {
		return nil, fmt.Errorf("kernel gate: %w", err)
	}
	// Set up before any address is added; a restart keeps the grants the
	// previous process gave, so that its addresses go on answering until
	// this one renews or revokes them.
	if err := gate.Setup(); err != nil {
		return nil, fmt.Errorf("kernel gate: %w", err)
	}
	m := &vip.Manager{Handle: handle, Gate: gate, RecordPath: opts.vipRecordPath(), HooksDir: opts.HooksDir, NodeName: opts.NodeName}
	// Forwarding spares clients a lost connection during a hand-off; a
	// node that cannot set it up still holds and releases addresses safely.
	if m.Forwarder, err = newForwarder(); err != nil {
		log.Error(err, "Setting up the hand-off forwarder; releasing addresses without passing their packets on")
	}
	if opts.FailoverHook != "" {
		if m.Hook, err = vip.NewHook(opts.FailoverHook, 0); err != nil {
			return nil, fmt.Errorf("--failover-hook: %w", err)
		}
	}
	return m, nil
}

// newForwarder returns the node's hand-off forwarder, set up; a nil
// interface, not a nil pointer, when it cannot be.
func newForwarder() (vip.Forwarder, error) {
	fwd, err := handoff.New()
	if err != nil {
		return nil, err
	}
	if err := fwd.Setup(); err != nil {
		_ = fwd.Close()
		return nil, err
	}
	return fwd, nil
}

// watchCache wakes the agent on every change of the kinds it reads (Sites
// too: an edit waited for the next resync) and returns, per kind, whether
// its handler has had the initial list. It retries until the API server
// answers: an agent that starts during an outage waits for it, leaving the
// node as it is, rather than exiting. The informers list together, not one
// after the other: a restarted owner's address lives on its predecessor's
// grant until the first decision, and each list waited for cost a poll
// period of 100 ms.
func (a *Agent) watchCache(ctx context.Context) ([]func() bool, bool) {
	notify := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { a.poke() },
		UpdateFunc: func(any, any) { a.poke() },
		DeleteFunc: func(any) { a.poke() },
	}
	seen := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    a.obs.failoverIPSeen,
		UpdateFunc: func(_, obj any) { a.obs.failoverIPSeen(obj) },
	}
	kinds := []client.Object{&webfarmv1.WebFarm{}, &webfarmv1.FrontNode{}, &webfarmv1.FailoverIP{}, &webfarmv1.Site{}}
	var synced []func() bool
	for len(kinds) > 0 {
		informer, err := a.informers.GetInformer(ctx, kinds[0], cache.BlockUntilSynced(false))
		var reg toolscache.ResourceEventHandlerRegistration
		if err == nil {
			reg, err = informer.AddEventHandler(notify)
		}
		if _, fip := kinds[0].(*webfarmv1.FailoverIP); err == nil && fip {
			_, err = informer.AddEventHandler(seen)
		}
		if err == nil {
			synced = append(synced, reg.HasSynced)
			kinds = kinds[1:]
			continue
		}
		logr.FromContextOrDiscard(ctx).Info("Waiting for the API server", "watching", fmt.Sprintf("%T", kinds[0]), "error", err.Error())
		select {
		case <-ctx.Done():
			return nil, false
		case <-a.clock.After(watchRetry):
		}
	}
	return synced, true
}

func (a *Agent) poke() {
	signal(a.wake)
	signal(a.identityWake)
}

// publishSoon asks the publisher to write the report, without waiting.
func (a *Agent) publishSoon() { signal(a.report) }

// signal wakes the reader of ch, once however many times it is called
// before the reader gets to it.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Start runs the agent until ctx is done, then shuts down gracefully: it
// hands off the addresses it holds and leaves HAProxy and the drain chain in
// place, so that traffic keeps flowing while a new agent starts.
func (a *Agent) Start(ctx context.Context) error {
	log := a.log.WithValues("node", a.opts.NodeName)
	ctx = logr.NewContext(ctx, log)
	defer a.markRunning(ctx)()
	a.revokeHAProxyStopAnswer(ctx)
	a.failover.restore(ctx)

	// The liveness channels and the failover loop outlive ctx: they must run
	// through the graceful hand-off.
	live, stopLive := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLive()
	done := make(chan struct{}, 3)
	goDone := func(fn func(context.Context)) { go func() { fn(live); done <- struct{}{} }() }
	synced := make(chan struct{})
	goDone(func(ctx context.Context) { a.renewLease(ctx, synced) })
	// The peer key beside the first lists, not after them: a restarted
	// owner's first heartbeats wait for it.
	keyRead := make(chan struct{})
	go func() { a.readPeerKey(ctx); close(keyRead) }()
	handlersSynced, watching := a.watchCache(ctx)
	if !watching || !a.waitForCache(ctx, handlersSynced) {
		stopLive()
		<-done
		<-keyRead
		return nil
	}
	close(synced)
	a.ready.Store(true)
	log.Info("Agent started")

	// The peers' keys first: the peer heartbeats need them.
	identityDone := make(chan struct{})
	go func() { a.runPeerIdentity(ctx); close(identityDone) }()
	goDone(func(ctx context.Context) {
		if err := a.peers.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error(err, "Peer heartbeats stopped")
		}
	})
	goDone(a.failover.run)
	// The serving checks stop with ctx: a front that shuts down is no
	// candidate anyway.
	servingDone := make(chan struct{})
	go func() { a.runServingChecks(ctx); close(servingDone) }()
	healthDone := make(chan struct{})
	go func() { a.runHealthChecks(ctx); close(healthDone) }()
	deadFrontsDone := make(chan struct{})
	go func() {
		if !a.opts.ChecksOnly {
			a.runDeadFronts(ctx)
		}
		close(deadFrontsDone)
	}()
	haproxyStopsDone := make(chan struct{})
	go func() { a.runHAProxyStops(ctx); close(haproxyStopsDone) }()
	publisherDone := make(chan struct{})
	go func() { a.runPublisher(ctx); close(publisherDone) }()
	if a.accessLog != nil {
		go func() {
			if err := a.accessLog.Run(ctx); err != nil {
				log.Error(err, "Access log relay stopped")
			}
		}()
	}

	// The node loop reads the key again at each resync: after this read,
	// so that an older key never replaces a newer one.
	<-keyRead
	a.runNodeLoop(ctx)
	// The shutdown writes its reports itself, once no other write is under
	// way that could land after them.
	<-publisherDone
	<-identityDone
	// Its last report must not undo the shutdown's.
	<-haproxyStopsDone
	a.shutdown(live)
	stopLive()
	for range 3 {
		<-done
	}
	<-servingDone
	<-healthDone
	<-deadFrontsDone
	a.answerHAProxyStopAtExit(ctx)
	log.Info("Agent stopped")
	return nil
}

// renewLease renews the node's Lease until ctx is done. Before the agent
// has its first view of the cluster (until synced is closed), it renews
// only while the proof of liveness its previous process saved lasts: a
// restarted owner keeps its address on that proof alone until it proves
// itself alive again, and its first decision waits for the informers'
// lists, which can take longer than the proof has left (right after an
// API outage, on a loaded node). Past that proof, renewals by an agent that
// cannot decide yet would only keep its node the owner of an address it
// does not announce.
func (a *Agent) renewLease(ctx context.Context, synced <-chan struct{}) {
	if until := a.failover.memory.savedProofEnd(); a.clock.Now().Before(until) {
		early, stop := context.WithCancel(ctx)
		proofEnds := a.clock.NewTimer(until.Sub(a.clock.Now()))
		go func() {
			defer proofEnds.Stop()
			select {
			case <-synced:
				return
			case <-proofEnds.C():
			case <-early.Done():
			}
			stop()
		}()
		a.lease.Run(early)
		stop()
	}
	select {
	case <-synced:
		if ctx.Err() == nil {
			a.lease.Run(ctx)
		}
	case <-ctx.Done():
	}
}

// ReadyCheck is the readiness probe: ready once the agent has its first view
// of the cluster and acts on the node.
func (a *Agent) ReadyCheck(*http.Request) error {
	if !a.ready.Load() {
		return errors.New("waiting for the first view of the cluster")
	}
	return nil
}

// NeedLeaderElection is false: every node runs its own agent.
func (a *Agent) NeedLeaderElection() bool { return false }

// waitForCache waits for the first complete view of the cluster, every
// handler of watchCache having had its informer's initial list; the agent
// changes nothing on the node before it has one.
func (a *Agent) waitForCache(ctx context.Context, synced []func() bool) bool {
	poll := a.clock.NewTicker(cacheSyncPoll)
	defer poll.Stop()
	for !allTrue(synced) {
		select {
		case <-ctx.Done():
			return false
		case <-poll.C():
		}
	}
	return true
}

// cacheSyncPoll paces waitForCache. client-go's own wait polls every
// 100 ms, which can be all that is left of a restarted owner's grant at the
// fastest timings.
const cacheSyncPoll = 5 * time.Millisecond

func allTrue(conds []func() bool) bool {
	for _, c := range conds {
		if !c() {
			return false
		}
	}
	return true
}

// readPeerKey reads the peer Secret and sets the key of the heartbeats.
func (a *Agent) readPeerKey(ctx context.Context) {
	a.peers.SetKey(a.refs.peerKey(ctx, a.opts.Namespace, a.opts.PeerSecret))
}

// runNodeLoop keeps HAProxy, the drain chain and the reports in line with the
// cluster until ctx is done: at every change, at every resync, and reads
// HAProxy's statistics every StatsInterval.
func (a *Agent) runNodeLoop(ctx context.Context) {
	resync := a.clock.NewTicker(a.opts.Resync)
	defer resync.Stop()
	stats := a.clock.NewTicker(a.opts.StatsInterval)
	defer stats.Stop()
	a.syncNode(ctx, true)
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
			a.syncNode(ctx, false)
			a.failover.poke()
		case <-resync.C():
			a.syncNode(ctx, true)
		case <-stats.C():
			a.readStats(ctx)
			a.uploadsTick(ctx)
			a.publishSoon()
		}
	}
}

// syncNode brings HAProxy and the drain chain in line with the cluster. A
// full sync also rewrites what looks unchanged, repairing what others removed.
func (a *Agent) syncNode(ctx context.Context, full bool) {
	log := logr.FromContextOrDiscard(ctx)
	snap, err := readSnapshot(ctx, a.cache, a.opts.NodeName)
	if err != nil {
		log.Error(err, "Reading the cache")
		return
	}
	if full {
		a.refs.forget()
		a.reporter.verify(snap.self)
		a.readPeerKey(ctx)
	}
	// Uploads first: a front that has not caught up is drained below.
	a.syncUploads(ctx, snap)
	a.syncProxy(ctx, snap, full)
	a.syncWebServer(ctx, snap)
	a.setServingTargets(ctx, snap)
	a.setCheckTargets(ctx, snap)
	rules, problems := drainRules(snap, a.uploadsHeld)
	for _, p := range problems {
		log.Error(p, "Skipping a drain rule")
	}
	a.syncDrain(ctx, snap, rules)
	a.publishSoon()
}

// syncDrain syncs the drain chain, timed, and records a failure as an
// event on the node's FrontNode.
func (a *Agent) syncDrain(ctx context.Context, snap *snapshot, rules []iptables.Rule) {
	start := a.clock.Now()
	err := a.drain.Sync(ctx, rules)
	metrics.DrainSyncDuration.Observe(a.clock.Since(start).Seconds())
	if err != nil {
		metrics.DrainSyncFailures.Inc()
		logr.FromContextOrDiscard(ctx).Error(err, "Syncing the drain chain")
		a.obs.warn(snap.self, EventDrainChainFailed, "Drain chain not synced: "+err.Error())
		return
	}
	a.obs.clear(EventDrainChainFailed)
}

// runPublisher writes the report whenever a loop changed it, until ctx is
// done. It is the one writer of the agent's status while the agent runs, so
// that a status write waiting on the API server delays no decision, no
// HAProxy sync, and no later report.
func (a *Agent) runPublisher(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.report:
			a.publish(ctx)
		}
	}
}

// publish writes the agent's report, giving up after one keepalive or
// minPublishTimeout if longer: the next change, or the failover loop's next
// pass, writes it again anyway.
func (a *Agent) publish(ctx context.Context) {
	a.publishWithin(ctx, max(a.failover.keepalive(), minPublishTimeout))
}

// minPublishTimeout is the least a status write is given. At one 100-200 ms
// keepalive, writes on a loaded machine were cut again and again: a
// withdrawal (OwnerUnheard) or a Released report, which the controller
// moves the address on, landed seconds late. A write in flight delays only
// the next report, which then carries everything new.
const minPublishTimeout = time.Second

func (a *Agent) publishWithin(ctx context.Context, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := a.reporter.publish(ctx); err != nil {
		logr.FromContextOrDiscard(ctx).V(1).Info("Status not published; will retry", "error", err.Error())
	}
}
