// Package agent is webfarm's node agent: on its own node only, it runs HAProxy
// for the farms that select the node, keeps the DNAT drain chain, holds and
// announces the failover addresses the node owns, renews the node's heartbeats
// and reports all of it in the node's FrontNode status.
package agent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"

	"github.com/webfarm/webfarm/agent/haproxy"
)

// LineCounts is what a queue in front of a log wrote and dropped
// (linequeue.Queue).
type LineCounts interface {
	Written() uint64
	Dropped() uint64
}

// Options configure an agent. The zero value of each optional field takes the
// default documented beside it.
type Options struct {
	// NodeName is the node this agent runs on (required).
	NodeName string
	// Log counts the lines of the agent's own log that its queue wrote
	// and dropped, for webfarm_agent_log_lines_total; nil: not counted.
	Log LineCounts
	// Namespace is the operator namespace: the node Lease and the peer Secret
	// live there. Default webfarm-system.
	Namespace string
	// StateDir holds what must outlive an agent restart but not a reboot:
	// HAProxy's configuration, sockets and pid file (haproxy/) and the
	// record of the failover addresses the agent added. Default /run/webfarm.
	StateDir string
	// HAProxyBinary is the haproxy executable. Default haproxy (from $PATH).
	HAProxyBinary string
	// HAProxyBeside says that HAProxy runs beside the agent (its own
	// container: `webfarm-agent haproxy`), not as the agent's child: the
	// agent installs, validates and reloads its configuration in
	// StateDir/haproxy but never starts or ends it, so that HAProxy
	// outlives the agent's container.
	HAProxyBeside bool
	// PeerPort is the UDP port of the agent-to-agent heartbeats. Default 7694.
	PeerPort int
	// PeerSecret names the Secret, in Namespace, whose key "authkey"
	// authenticates agent-to-agent heartbeats. Default webfarm-peer-key.
	PeerSecret string
	// PeerAddress is the node's own address, the one its FrontNode
	// advertises, where the peer heartbeats listen; empty listens on every
	// address, the failover addresses the node holds included (for nodes
	// whose address the agent is not told).
	PeerAddress string
	// PeerKeyMaxAge is the age at which the node's own peer key is rotated
	// (heartbeat.Identity); negative never rotates it. Default 30 days.
	PeerKeyMaxAge time.Duration
	// FailoverHook, when set, is an executable run at every takeover and
	// release of a failover address (see agent/vip).
	FailoverHook string
	// ChecksDir holds the scripts that exec health checks may name (a
	// FailoverIP names a file here, never a path). Empty: no exec check
	// runs, each fails saying so.
	ChecksDir string
	// HooksDir holds the notify hooks that FailoverIPs may name
	// (spec.hooks). Empty: no notify hook runs.
	HooksDir string
	// Resync is how often the agent rewrites its node's state even when
	// nothing changed, repairing what someone else removed. Default 10s.
	Resync time.Duration
	// StatsInterval is how often the agent reads HAProxy's server states and
	// sessions. Default 1s.
	StatsInterval time.Duration
	// ShutdownGrace bounds a graceful shutdown: the time given to the planned
	// hand-off of the addresses this node holds. Default 10s.
	ShutdownGrace time.Duration
	// HAProxyMetrics is where HAProxy serves its Prometheus exporter:
	// "node:<port>" on the node's address (FrontNode spec.address),
	// "<ip>:<port>" on that address (127.0.0.1 for the node only), or "off".
	// Never every address: the failover addresses would serve it too.
	// Default node:8404.
	HAProxyMetrics string
	// DisableAccessLog stops HAProxy's access log, which the agent otherwise
	// writes to its stdout.
	DisableAccessLog bool
	// NginxDir, when set, is the directory the agent owns in nginx's
	// configuration (included by nginx.conf inside http {}): it renders
	// there the vhost of every Site with a webServer on this node's farms,
	// checks nginx's whole configuration and reloads nginx. Empty: the
	// agent leaves nginx alone.
	NginxDir string
	// NginxBinary is the nginx executable. Default nginx (from $PATH).
	NginxBinary string
	// NginxConfig, when set, is nginx's main configuration file (its -c),
	// for an nginx not started from its default one. Empty: nginx's own
	// default.
	NginxConfig string
	// RsyncBinary is the rsync executable that syncs the farms' declared
	// upload directories. Default rsync (from $PATH).
	RsyncBinary string
	// NginxAccessLog is the file the vhosts log to. Default
	// /var/log/nginx/access.log.
	NginxAccessLog string
	// WatchSecrets watches the metadata of the Secrets that served Sites'
	// TLS names, so that a renewed certificate reaches HAProxy at once
	// rather than at the next resync. It needs list and watch of Secrets
	// in the farm namespaces.
	WatchSecrets bool
	// ChecksOnly leaves dead fronts to HAProxy's own checks: the agent does
	// not mark down the servers of a front whose heartbeats went silent.
	// For nodes whose peer heartbeats do not travel the network HAProxy
	// reaches the web servers on, and for comparisons.
	ChecksOnly bool
}

// Defaults.
const (
	DefaultNamespace      = "webfarm-system"
	DefaultStateDir       = "/run/webfarm"
	DefaultPeerPort       = 7694
	DefaultPeerSecret     = "webfarm-peer-key"
	DefaultPeerKeyMaxAge  = 30 * 24 * time.Hour
	DefaultResync         = 10 * time.Second
	DefaultStatsInterval  = time.Second
	DefaultShutdownGrace  = 10 * time.Second
	DefaultHAProxyMetrics = "node:8404"
	DefaultNginxAccessLog = "/var/log/nginx/access.log"
)

// PeerSecretKey is the key of the peer Secret that holds the shared key.
const PeerSecretKey = "authkey"

// withDefaults returns o with every unset field at its default, or an error
// naming the field that cannot be used.
func (o Options) withDefaults() (Options, error) {
	if o.NodeName == "" {
		return o, errors.New("node name is required (--node-name or $NODE_NAME)")
	}
	return o.nodeDefaults()
}

// nodeDefaults is withDefaults without the node name, which only the
// running agent needs.
func (o Options) nodeDefaults() (Options, error) {
	setDefault(&o.Namespace, DefaultNamespace)
	setDefault(&o.StateDir, DefaultStateDir)
	setDefault(&o.HAProxyBinary, "haproxy")
	setDefault(&o.PeerSecret, DefaultPeerSecret)
	setDefault(&o.PeerPort, DefaultPeerPort)
	setDefault(&o.PeerKeyMaxAge, DefaultPeerKeyMaxAge)
	setDefault(&o.Resync, DefaultResync)
	setDefault(&o.StatsInterval, DefaultStatsInterval)
	setDefault(&o.ShutdownGrace, DefaultShutdownGrace)
	setDefault(&o.HAProxyMetrics, DefaultHAProxyMetrics)
	setDefault(&o.NginxBinary, "nginx")
	setDefault(&o.RsyncBinary, "rsync")
	setDefault(&o.NginxAccessLog, DefaultNginxAccessLog)
	if o.NginxDir != "" && !filepath.IsAbs(o.NginxDir) {
		return o, fmt.Errorf("nginx dir %q: must be an absolute path", o.NginxDir)
	}
	if o.NginxConfig != "" && !filepath.IsAbs(o.NginxConfig) {
		return o, fmt.Errorf("nginx config %q: must be an absolute path", o.NginxConfig)
	}
	if _, err := o.haproxyMetrics(netip.MustParseAddr("192.0.2.1")); err != nil {
		return o, err
	}
	if !filepath.IsAbs(o.StateDir) {
		return o, fmt.Errorf("state dir %q: must be an absolute path", o.StateDir)
	}
	if o.PeerPort < 1 || o.PeerPort > 65535 {
		return o, fmt.Errorf("peer port %d: must be between 1 and 65535", o.PeerPort)
	}
	if _, err := o.peerListen(); err != nil {
		return o, err
	}
	return o, nil
}

// peerListen is where the peer heartbeats listen: the node's address, or
// every address when it is not given.
func (o Options) peerListen() (netip.AddrPort, error) {
	if o.PeerAddress == "" {
		return netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(o.PeerPort)), nil
	}
	ip, err := netip.ParseAddr(o.PeerAddress)
	if err != nil || ip.IsUnspecified() || ip.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("peer address %q: must be one address of the node, or empty for every address", o.PeerAddress)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(o.PeerPort)), nil
}

func setDefault[T comparable](field *T, value T) {
	var zero T
	if *field == zero {
		*field = value
	}
}

// haproxyMetrics is the address of HAProxy's exporter on a node whose
// address is node; invalid when off.
func (o Options) haproxyMetrics(node netip.Addr) (netip.AddrPort, error) {
	if o.HAProxyMetrics == "off" {
		return netip.AddrPort{}, nil
	}
	host, port, err := net.SplitHostPort(o.HAProxyMetrics)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("haproxy metrics %q: %w", o.HAProxyMetrics, err)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return netip.AddrPort{}, fmt.Errorf("haproxy metrics %q: port must be between 1 and 65535", o.HAProxyMetrics)
	}
	ip := node
	if host != "node" {
		if ip, err = netip.ParseAddr(host); err != nil || ip.IsUnspecified() {
			return netip.AddrPort{}, fmt.Errorf("haproxy metrics %q: host must be \"node\" or one address, never every address", o.HAProxyMetrics)
		}
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(n)), nil
}

// uploadsDir holds the rsync daemons' configurations, secrets and logs.
func (o Options) uploadsDir() string { return filepath.Join(o.StateDir, "uploads") }

// haproxyDir is where HAProxy's files live.
func (o Options) haproxyDir() string { return filepath.Join(o.StateDir, "haproxy") }

// HAProxy is the node's HAProxy as these options describe it.
func (o Options) HAProxy() *haproxy.Process {
	return &haproxy.Process{Binary: o.HAProxyBinary, Dir: o.haproxyDir(), Beside: o.HAProxyBeside}
}

// vipRecordPath is the record of the failover addresses the agent added.
func (o Options) vipRecordPath() string { return filepath.Join(o.StateDir, "vip-addresses.json") }

// memoryPath keeps, per FailoverIP, the epoch at which the agent holds its
// address, so that a restarted agent keeps serving it (agent/ownership.Memory).
func (o Options) memoryPath() string { return filepath.Join(o.StateDir, "ownership.json") }

// peerKeyPath keeps the node's own peer key (heartbeat.Identity). In the
// state dir, on the host's /run: a rebooted node makes a new one.
func (o Options) peerKeyPath() string { return filepath.Join(o.StateDir, "peer-key.json") }
