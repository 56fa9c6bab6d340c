package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A FailoverIP that stands on its own (spec.nodeSelector), such as the
// address of a MySQL/MariaDB primary: its candidates are the nodes it
// selects whose health checks pass, with keepalived's track_script meaning,
// and notify hooks run on its transitions (docs/architecture.md, "A
// database failover IP").

// CheckType names the kind of a health check.
// +kubebuilder:validation:Enum=TCP;HTTP;MySQL;Exec
type CheckType string

const (
	// CheckTCP passes when a TCP connection to the port opens.
	CheckTCP CheckType = "TCP"
	// CheckHTTP passes when a GET of the path answers with a 2xx or 3xx
	// status.
	CheckHTTP CheckType = "HTTP"
	// CheckMySQL connects to the MySQL/MariaDB server and passes when it is a
	// writable primary, or, when allowed, a replica that may be promoted.
	CheckMySQL CheckType = "MySQL"
	// CheckExec passes when a script of the agent's checks directory exits 0.
	CheckExec CheckType = "Exec"
)

// Defaults of a health check, keepalived's track_script ones apart from
// rise and fall: one failure must not move a database.
const (
	DefaultCheckInterval = time.Second
	DefaultCheckTimeout  = time.Second
	DefaultCheckRise     = 2
	DefaultCheckFall     = 2
	// DefaultMySQLPort is the port of the MySQL check.
	DefaultMySQLPort = 3306
	// DefaultNotifyHookTimeout bounds a notify hook.
	DefaultNotifyHookTimeout = 30 * time.Second
)

// HealthCheck is one check that the agent runs on each selected node, on
// the node itself (loopback by default). Every check must pass for the node
// to be eligible.
// +kubebuilder:validation:XValidation:rule="(self.type == 'TCP') == has(self.tcp) && (self.type == 'HTTP') == has(self.http) && (self.type == 'MySQL') == has(self.mysql) && (self.type == 'Exec') == has(self.exec)",message="set exactly the field named by type: tcp, http, mysql or exec"
// +kubebuilder:validation:XValidation:rule="!has(self.timeout) || !has(self.interval) || duration(self.timeout) <= duration(self.interval)",message="timeout must not exceed interval",fieldPath=".timeout"
type HealthCheck struct {
	// name identifies the check in the status.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// type is the kind of check; the field of the same name holds its
	// parameters.
	// +required
	Type CheckType `json:"type"`

	// tcp: connect to a port.
	// +optional
	TCP *TCPCheck `json:"tcp,omitempty"`
	// http: GET a path.
	// +optional
	HTTP *HTTPCheck `json:"http,omitempty"`
	// mysql: ask a MySQL/MariaDB server whether it is a writable primary.
	// +optional
	MySQL *MySQLCheck `json:"mysql,omitempty"`
	// exec: run a script of the agent's checks directory.
	// +optional
	Exec *ExecCheck `json:"exec,omitempty"`

	// interval is how often the check runs (keepalived's interval).
	// +optional
	// +kubebuilder:default="1s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('10m')",message="interval must be between 100ms and 10m"
	Interval metav1.Duration `json:"interval,omitempty"`

	// timeout bounds one run; a run that takes longer fails.
	// +optional
	// +kubebuilder:default="1s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10ms') && duration(self) <= duration('10m')",message="timeout must be between 10ms and 10m"
	Timeout metav1.Duration `json:"timeout,omitempty"`

	// rise is how many passes in a row make a failing check pass.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Rise int32 `json:"rise,omitempty"`

	// fall is how many failures in a row make a passing check fail.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Fall int32 `json:"fall,omitempty"`
}

// TCPCheck connects to a port.
type TCPCheck struct {
	// host to connect to; loopback by default.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Host string `json:"host,omitempty"`
	// port to connect to.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
}

// HTTPCheck requests a path; a 2xx or 3xx status passes.
type HTTPCheck struct {
	// host to connect to; loopback by default.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Host string `json:"host,omitempty"`
	// port to connect to.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
	// path to request.
	// +optional
	// +kubebuilder:default="/"
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	Path string `json:"path,omitempty"`
}

// MySQLCheck asks a MySQL/MariaDB server what it is. It connects, reads
// @@read_only and the replication state, and passes for a writable server
// (a primary), or, when allowPromotableReplica is set, for a read-only
// replica whose SQL thread runs without error: a hook may promote it. A
// read-only server that replicates from nobody (a fenced former primary)
// never passes.
type MySQLCheck struct {
	// host to connect to; loopback by default.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Host string `json:"host,omitempty"`
	// port to connect to.
	// +optional
	// +kubebuilder:default=3306
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`
	// credentialsSecretRef names a Secret in the FailoverIP's namespace
	// with the keys "username" and "password". The check reads
	// @@global.read_only and SHOW SLAVE STATUS, which on MariaDB 10.11
	// needs SLAVE MONITOR (REPLICATION CLIENT no longer allows it;
	// on MySQL, REPLICATION CLIENT). The example hooks, if they log in as
	// the same user, need READ_ONLY ADMIN, REPLICATION SLAVE ADMIN and
	// RELOAD as well (docs/install.md).
	// +required
	CredentialsSecretRef LocalObjectReference `json:"credentialsSecretRef"`
	// allowPromotableReplica makes a healthy read-only replica pass too,
	// so that it is a candidate that the master hook promotes.
	// +optional
	AllowPromotableReplica bool `json:"allowPromotableReplica,omitempty"`
	// maxReplicationLag, when set, fails a replica whose
	// Seconds_Behind_Master exceeds it. A replica whose primary is gone
	// reports no lag and passes.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	MaxReplicationLag *metav1.Duration `json:"maxReplicationLag,omitempty"`
}

// ExecCheck runs a script of the agent's checks directory (the agent flag
// --checks-dir, a ConfigMap in the chart), never a path from the API: no
// user of FailoverIPs can make the agent run a program of their choice.
type ExecCheck struct {
	// script is the file name within the checks directory.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`
	Script string `json:"script"`
	// args are passed to the script.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=1024
	Args []string `json:"args,omitempty"`
}

// NotifyHooks name scripts of the agent's hooks directory (the agent flag
// --hooks-dir, a ConfigMap in the chart) to run on this node's transitions,
// as keepalived's notify_master, notify_backup and notify_fault. Each runs
// with WEBFARM_STATE (master, backup or fault), WEBFARM_FAILOVERIP
// (namespace/name), WEBFARM_ADDRESS, WEBFARM_INTERFACE, WEBFARM_EPOCH,
// WEBFARM_PREVIOUS_OWNER, WEBFARM_LAST_OWNER and WEBFARM_LAST_OWNER_EPOCH
// (status.lastOwner) and WEBFARM_NODE in its environment, and is killed
// at its timeout. Hooks must be idempotent: the agent runs one again after
// a failure or a restart.
type NotifyHooks struct {
	// master runs when this node takes the address.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`
	Master string `json:"master,omitempty"`
	// backup runs when this node gives the address up on request (a
	// planned hand-off, or its checks failed).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`
	Backup string `json:"backup,omitempty"`
	// fault runs when this node removed the address because it could not
	// prove itself alive (it fenced itself).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`
	Fault string `json:"fault,omitempty"`
	// timeout bounds each run.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('10m')",message="timeout must be between 100ms and 10m"
	Timeout metav1.Duration `json:"timeout,omitempty"`
	// masterBeforeAnnounce makes a new owner run its master hook, and
	// wait for it to succeed, before it adds and announces the address:
	// promote the replica first, then take the address. While it fails
	// the address stays unheld here and the hook runs again.
	// +optional
	MasterBeforeAnnounce bool `json:"masterBeforeAnnounce,omitempty"`
}

// CheckState is the state of a node's health checks for one FailoverIP.
// +kubebuilder:validation:Enum=Passing;Failing;Unknown
type CheckState string

const (
	// CheckPassing: every check passes (after rise).
	CheckPassing CheckState = "Passing"
	// CheckFailing: some check fails (after fall).
	CheckFailing CheckState = "Failing"
	// CheckUnknown: some check has not reached rise or fall since the
	// agent started.
	CheckUnknown CheckState = "Unknown"
)

// NodeChecksStatus is what a node's agent finds of the health checks of
// one FailoverIP (FrontNode status.checks).
type NodeChecksStatus struct {
	// name of the FailoverIP, as "namespace/name".
	Name string `json:"name"`
	// state sums up the checks: Failing if one fails, else Unknown if one
	// is unknown, else Passing.
	State CheckState `json:"state"`
	// checks lists each check's state.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=8
	Checks []CheckResult `json:"checks,omitempty"`
}

// CheckResult is one check's state on one node.
type CheckResult struct {
	// name of the check.
	Name string `json:"name"`
	// state of the check after rise and fall.
	State CheckState `json:"state"`
	// message says what the last run saw, e.g. "primary (read_only=0)".
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Message string `json:"message,omitempty"`
	// lastTransitionTime is when state last changed.
	// +optional
	LastTransitionTime *metav1.Time `json:"lastTransitionTime,omitempty"`
}

// CheckMessageWritablePrimary is the message of a MySQL check that found a
// writable server replicating from nobody: the primary. The controller
// prefers such a node in the election over a promotable replica, and never
// moves the address away from it.
const CheckMessageWritablePrimary = "primary (read_only=0)"

// HookState is the transition a notify hook ran for.
// +kubebuilder:validation:Enum=master;backup;fault
type HookState string

const (
	HookMaster HookState = "master"
	HookBackup HookState = "backup"
	HookFault  HookState = "fault"
)

// HookRun is the outcome of the last notify hook an agent ran for one
// FailoverIP (FrontNode status.hooks).
type HookRun struct {
	// name of the FailoverIP, as "namespace/name".
	Name string `json:"name"`
	// state is the transition the hook ran for.
	State HookState `json:"state"`
	// epoch of the transition.
	Epoch int64 `json:"epoch"`
	// succeeded is true when the hook exited 0 within its timeout.
	Succeeded bool `json:"succeeded"`
	// running is true while the hook still runs.
	// +optional
	Running bool `json:"running,omitempty"`
	// message is the end of its output, or why it failed.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
	// finishedTime is when it ended.
	// +optional
	FinishedTime *metav1.Time `json:"finishedTime,omitempty"`
}

// Eligibility reasons (FailoverIP status.nodes).
const (
	EligibleCandidate   = "Candidate"
	EligibleChecksFail  = "ChecksFailing"
	EligibleChecksUnk   = "ChecksUnknown"
	EligibleDraining    = "Draining"
	EligibleShutdown    = "ShuttingDown"
	EligibleNotPresent  = "NotPresent"
	EligibleNoFrontNode = "NoFrontNode"
)

// NodeEligibility says why a selected node is or is not a candidate of a
// standalone FailoverIP.
type NodeEligibility struct {
	// name of the node.
	Name string `json:"name"`
	// eligible is true for a candidate.
	Eligible bool `json:"eligible"`
	// reason is Candidate, or why not: ChecksFailing, ChecksUnknown,
	// Draining, ShuttingDown, NotPresent (its Lease is stale or its peers do
	// not hear it), NoFrontNode.
	Reason string `json:"reason"`
	// checks is the node's report of the health checks.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=8
	Checks []CheckResult `json:"checks,omitempty"`
	// lastHook is the last notify hook the node ran for this FailoverIP.
	// +optional
	LastHook *HookRun `json:"lastHook,omitempty"`
}
