package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BalanceAlgorithm is how HAProxy spreads new clients over the fronts.
// +kubebuilder:validation:Enum=roundrobin;leastconn;source
type BalanceAlgorithm string

const (
	// BalanceRoundRobin gives each front its turn, as in the original setup.
	BalanceRoundRobin BalanceAlgorithm = "roundrobin"
	// BalanceLeastConn picks the front with the fewest connections.
	BalanceLeastConn BalanceAlgorithm = "leastconn"
	// BalanceSource hashes the client address, so a client keeps its front
	// even without cookies.
	BalanceSource BalanceAlgorithm = "source"
)

// HealthCheckMethod is the HTTP method of HAProxy's health check.
// +kubebuilder:validation:Enum=HEAD;GET;OPTIONS
type HealthCheckMethod string

// ObserveMode is which errors of real traffic count against a front
// (HAProxy's `observe`).
// +kubebuilder:validation:Enum=None;Layer4;Layer7
type ObserveMode string

const (
	// ObserveNone counts nothing: only the health check takes a front down.
	ObserveNone ObserveMode = "None"
	// ObserveLayer4 counts failed connections: refused, reset or timed out.
	ObserveLayer4 ObserveMode = "Layer4"
	// ObserveLayer7 counts failed connections and HTTP errors: 5xx answers
	// (except 501 and 505), broken or timed-out responses.
	ObserveLayer7 ObserveMode = "Layer7"
)

// WebFarmSpec declares one load-balanced site: which nodes serve it, behind
// which failover addresses, and how the HAProxy on every front balances it.
// +kubebuilder:validation:XValidation:rule="!has(self.failoverIPs) || self.failoverIPs.all(a, self.failoverIPs.exists_one(b, a == b))",message="failoverIPs must not list the same FailoverIP twice",fieldPath=".failoverIPs"
// +kubebuilder:validation:XValidation:rule="!has(self.frontend) || !has(self.frontend.port) || !has(self.backend) || ((!has(self.backend.webPort) || self.frontend.port != self.backend.webPort) && (!has(self.backend.drainPort) || self.frontend.port != self.backend.drainPort))",message="frontend.port must differ from backend.webPort and backend.drainPort: HAProxy and the web server, or the drain rule, would share it",fieldPath=".frontend.port"
// +kubebuilder:validation:XValidation:rule="!has(self.frontSelector.matchExpressions) || self.frontSelector.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="frontSelector.matchExpressions: operator must be In, NotIn, Exists or DoesNotExist",fieldPath=".frontSelector"
type WebFarmSpec struct {
	// frontSelector selects the Nodes that are fronts of this farm. Every
	// selected node runs HAProxy for the farm and serves it on backend.webPort.
	// +required
	FrontSelector metav1.LabelSelector `json:"frontSelector"`

	// failoverIPs names the FailoverIP objects, in this namespace, whose
	// addresses clients use to reach the farm. HAProxy listens on each of them
	// (on frontend.port); with none, it listens on every address of the node.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +kubebuilder:validation:items:MaxLength=253
	FailoverIPs []string `json:"failoverIPs,omitempty"`

	// frontend is where HAProxy accepts clients.
	// +optional
	// +kubebuilder:default={}
	Frontend FrontendSpec `json:"frontend,omitempty"`

	// backend is how HAProxy reaches the web server on every front.
	// +optional
	// +kubebuilder:default={}
	Backend BackendSpec `json:"backend,omitempty"`

	// healthCheck is HAProxy's HTTP check of every front.
	// +optional
	// +kubebuilder:default={}
	HealthCheck HealthCheckSpec `json:"healthCheck,omitempty"`

	// timeouts are HAProxy's connect, client and server timeouts.
	// +optional
	// +kubebuilder:default={}
	Timeouts TimeoutsSpec `json:"timeouts,omitempty"`

	// stats serves HAProxy's statistics page on the farm's frontend.
	// +optional
	Stats *StatsSpec `json:"stats,omitempty"`

	// errorPages replaces HAProxy's own error responses with pages of the site.
	// +optional
	ErrorPages *ErrorPagesSpec `json:"errorPages,omitempty"`

	// uploads keeps directories identical on every front (user uploads).
	// +optional
	Uploads *UploadsSpec `json:"uploads,omitempty"`
}

// FrontendSpec is where HAProxy accepts clients.
type FrontendSpec struct {
	// port is the TCP port HAProxy listens on for clients.
	// +optional
	// +kubebuilder:default=80
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// maxConn is the most client connections HAProxy accepts at once for this
	// farm; further clients wait in the kernel's queue.
	// +optional
	// +kubebuilder:default=2000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxConn int32 `json:"maxConn,omitempty"`

	// bindNodeAddress has HAProxy listen on each front's own address
	// (FrontNode spec.address) as well as on the farm's failover
	// addresses, for clients or checks that reach a front directly. A farm
	// without failover IPs listens on every address already.
	// +optional
	BindNodeAddress bool `json:"bindNodeAddress,omitempty"`
}

// BackendSpec is how HAProxy reaches the web server on every front.
// +kubebuilder:validation:XValidation:rule="!has(self.webPort) || !has(self.drainPort) || self.webPort != self.drainPort",message="drainPort must differ from webPort: the drain rule maps the one to the other",fieldPath=".drainPort"
type BackendSpec struct {
	// webPort is the port the web server listens on, on every front. The
	// backup twin of each front is checked and served on it.
	// +optional
	// +kubebuilder:default=5080
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	WebPort int32 `json:"webPort,omitempty"`

	// drainPort is the port the main server of every front is checked on.
	// Nothing listens there: the agent's DNAT rule maps it to webPort while the
	// front serves, and removing the rule drains the front.
	// +optional
	// +kubebuilder:default=5081
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	DrainPort int32 `json:"drainPort,omitempty"`

	// balance is the algorithm that picks a front for a new client.
	// +optional
	// +kubebuilder:default=roundrobin
	Balance BalanceAlgorithm `json:"balance,omitempty"`

	// cookie is the sticky-session cookie HAProxy inserts ("insert indirect"),
	// so that a client keeps reaching the front that served it first.
	// +optional
	// +kubebuilder:default={}
	Cookie CookieSpec `json:"cookie,omitempty"`

	// forwardFor adds the client's address in an X-Forwarded-For header, so
	// that the web server can log it.
	// +optional
	// +kubebuilder:default=true
	ForwardFor *bool `json:"forwardFor,omitempty"`

	// retries is how many times HAProxy retries a connection to a front that
	// failed, each time on another front when redispatch is set. A GET or
	// HEAD whose front closed the connection without an answer (a front
	// dying under it) is retried too; other methods, which may have taken
	// effect, are not. On a farm with uploads and redispatch, a GET or HEAD
	// answered 404 is retried on another front as well (an upload not there
	// yet): a real 404 then costs retries+1 answers.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Retries *int32 `json:"retries,omitempty"`

	// redispatch lets HAProxy send a client to another front when the one its
	// cookie names is down, and retry a failed connection on another front
	// at every retry (`option redispatch 1`) rather than on the last one
	// only, so that a request that picked a dead front is served elsewhere
	// within one connect timeout.
	// +optional
	// +kubebuilder:default=true
	Redispatch *bool `json:"redispatch,omitempty"`
}

// CookieSpec is the sticky-session cookie.
type CookieSpec struct {
	// name of the cookie, a token of letters, digits, '.', '_' and '-'.
	// +optional
	// +kubebuilder:default=SERVERID
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._-]+$`
	Name string `json:"name,omitempty"`
}

// HealthCheckSpec is HAProxy's HTTP check of every front.
type HealthCheckSpec struct {
	// method of the check request.
	// +optional
	// +kubebuilder:default=HEAD
	Method HealthCheckMethod `json:"method,omitempty"`

	// path requested by the check; a front is up while it answers 2xx or 3xx.
	// It starts with '/' and holds no spaces, quotes, '#', '$' or '\'.
	// +optional
	// +kubebuilder:default="/check.txt"
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/[A-Za-z0-9._~!&()*+,;=:@%/?-]*$`
	Path string `json:"path,omitempty"`

	// interval between two checks of the same server.
	// +optional
	// +kubebuilder:default="2s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('1h')",message="interval must be between 100ms and 1h"
	Interval metav1.Duration `json:"interval,omitempty"`

	// fastInterval is the interval between two checks of a server whose
	// state is changing: after a first failed check of a server that is up,
	// or a first good one of a server that is down (HAProxy's `fastinter`).
	// A web server that hangs is then found after interval plus about fall
	// times fastInterval and timeout, rather than fall intervals. One longer
	// than interval is cut to interval.
	// +optional
	// +kubebuilder:default="500ms"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('1h')",message="fastInterval must be between 100ms and 1h"
	FastInterval metav1.Duration `json:"fastInterval,omitempty"`

	// timeout is how long a check waits for the web server's answer once
	// connected (HAProxy's `timeout check`; the connection itself is bounded
	// by the connect timeout).
	// +optional
	// +kubebuilder:default="1s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10ms') && duration(self) <= duration('1h')",message="timeout must be between 10ms and 1h"
	Timeout metav1.Duration `json:"timeout,omitempty"`

	// rise is how many consecutive good checks bring a server up.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Rise int32 `json:"rise,omitempty"`

	// fall is how many consecutive failed checks take a server down.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Fall int32 `json:"fall,omitempty"`

	// observe watches real traffic too (HAProxy's `observe`): after
	// errorLimit consecutive errors of the kind it names, a front is marked
	// down at once (`on-error mark-down`) rather than after fall failed
	// checks, and comes back through the check (rise). Layer7 also counts
	// the site's own 5xx answers: a site that fails on some pages can then
	// take every front down.
	// +optional
	// +kubebuilder:default=Layer4
	Observe ObserveMode `json:"observe,omitempty"`

	// errorLimit is how many consecutive errors of real traffic mark a front
	// down when observe is not None.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	ErrorLimit int32 `json:"errorLimit,omitempty"`
}

// TimeoutsSpec are HAProxy's timeouts.
type TimeoutsSpec struct {
	// connect is how long HAProxy waits for a front's web server to accept a
	// connection. The fronts share a LAN, where a connection is accepted in
	// well under a millisecond: a short timeout, with retries and
	// redispatch, sends a request that picked a dead front to another one
	// within a client's patience. Raise it for fronts on a slow network.
	// +optional
	// +kubebuilder:default="100ms"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1ms') && duration(self) <= duration('24h')",message="connect must be between 1ms and 24h"
	Connect metav1.Duration `json:"connect,omitempty"`

	// client is how long a client may stay silent.
	// +optional
	// +kubebuilder:default="50s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1ms') && duration(self) <= duration('24h')",message="client must be between 1ms and 24h"
	Client metav1.Duration `json:"client,omitempty"`

	// server is how long a web server may stay silent.
	// +optional
	// +kubebuilder:default="50s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1ms') && duration(self) <= duration('24h')",message="server must be between 1ms and 24h"
	Server metav1.Duration `json:"server,omitempty"`
}

// StatsSpec is HAProxy's statistics page.
// +kubebuilder:validation:XValidation:rule="!self.enabled || has(self.credentialsSecretRef)",message="credentialsSecretRef is required when the stats page is enabled",fieldPath=".credentialsSecretRef"
type StatsSpec struct {
	// enabled serves the statistics page.
	// +optional
	// +kubebuilder:default=true
	Enabled bool `json:"enabled"`

	// uri is the path of the statistics page on the frontend. It starts with
	// '/' and holds no spaces, quotes, '#', '$' or '\'.
	// +optional
	// +kubebuilder:default="/haproxy?stats"
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^/[A-Za-z0-9._~!&()*+,;=:@%/?-]*$`
	URI string `json:"uri,omitempty"`

	// credentialsSecretRef names a Secret, in this namespace, whose keys
	// "username" and "password" guard the page (HTTP basic authentication).
	// Credentials are never written inline in the WebFarm.
	// +optional
	CredentialsSecretRef *LocalObjectReference `json:"credentialsSecretRef,omitempty"`
}

// ErrorPagesSpec replaces HAProxy's own error responses.
type ErrorPagesSpec struct {
	// configMapRef names a ConfigMap, in this namespace, whose keys are HTTP
	// status codes HAProxy may answer itself (400, 403, 408, 500, 502, 503,
	// 504) and whose values are the HTML pages to send. The agent adds the
	// status line and headers; other keys are an error.
	// +required
	ConfigMapRef LocalObjectReference `json:"configMapRef"`
}

// WebFarmStatus is what the controller observed of the farm.
type WebFarmStatus struct {
	// observedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// frontsTotal counts the nodes selected as fronts.
	// +optional
	FrontsTotal int32 `json:"frontsTotal"`

	// frontsReady counts fronts that are Active with a healthy proxy.
	// +optional
	FrontsReady int32 `json:"frontsReady"`

	// frontsDraining counts fronts that are Draining or Drained.
	// +optional
	FrontsDraining int32 `json:"frontsDraining"`

	// failoverIPs reports who holds each of the farm's addresses.
	// +optional
	// +listType=map
	// +listMapKey=name
	FailoverIPs []WebFarmFailoverIPStatus `json:"failoverIPs,omitempty"`

	// owners lists the nodes holding the farm's addresses, comma-separated,
	// for printing.
	// +optional
	Owners string `json:"owners,omitempty"`

	// conditions: Ready (the farm is served on all its addresses) and
	// Degraded (it is served, with less redundancy than declared).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// WebFarmFailoverIPStatus is one address of the farm and who holds it.
type WebFarmFailoverIPStatus struct {
	// name of the FailoverIP.
	Name string `json:"name"`
	// address of the FailoverIP.
	// +optional
	Address string `json:"address,omitempty"`
	// owner is the node holding the address; empty when none does.
	// +optional
	Owner string `json:"owner,omitempty"`
}

// WebFarm reasons.
const (
	ReasonAllFrontsReady       = "AllFrontsReady"
	ReasonSomeFrontsNotReady   = "SomeFrontsNotReady"
	ReasonFrontsDraining       = "FrontsDraining"
	ReasonNoFrontReady         = "NoFrontReady"
	ReasonNoFrontSelected      = "NoFrontSelected"
	ReasonFailoverIPUnowned    = "FailoverIPUnowned"
	ReasonFailoverIPNotFound   = "FailoverIPNotFound"
	ReasonInvalidFrontSelector = "InvalidFrontSelector"
)

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=wf,categories=webfarm-all
// +kubebuilder:printcolumn:name="Fronts",type=integer,JSONPath=`.status.frontsTotal`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.frontsReady`
// +kubebuilder:printcolumn:name="Draining",type=integer,JSONPath=`.status.frontsDraining`
// +kubebuilder:printcolumn:name="VIP-Owners",type=string,JSONPath=`.status.owners`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// WebFarm is one load-balanced, highly available site: HAProxy on every
// selected front, reached through one or more FailoverIPs.
type WebFarm struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the farm.
	// +required
	Spec WebFarmSpec `json:"spec"`

	// status is what the controller observed of the farm.
	// +optional
	Status WebFarmStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// WebFarmList is a list of WebFarms.
type WebFarmList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WebFarm `json:"items"`
}

func init() {
	SchemeBuilder.Register(&WebFarm{}, &WebFarmList{})
}
