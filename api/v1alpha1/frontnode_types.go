package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// FrontPhase is where a front stands in its drain cycle.
// +kubebuilder:validation:Enum=Active;Draining;Drained;Down
type FrontPhase string

const (
	// FrontActive serves new and existing clients.
	FrontActive FrontPhase = "Active"
	// FrontDraining takes no new clients; clients holding its cookie finish.
	FrontDraining FrontPhase = "Draining"
	// FrontDrained is draining and has no session left on the active proxy:
	// it can be stopped for maintenance.
	FrontDrained FrontPhase = "Drained"
	// FrontDown has not renewed its heartbeat within its deadtime.
	FrontDown FrontPhase = "Down"
)

// ServerRole tells the main server of a front from its backup twin.
// +kubebuilder:validation:Enum=Main;Backup
type ServerRole string

const (
	// ServerMain is checked on the drain port and takes new clients.
	ServerMain ServerRole = "Main"
	// ServerBackup is checked on the web port and only serves clients whose
	// cookie names a main server that is down.
	ServerBackup ServerRole = "Backup"
)

// VIPState is what an agent does with one FailoverIP.
// +kubebuilder:validation:Enum=Holding;Waiting;Released;Fenced;OwnerUnheard
type VIPState string

const (
	// VIPHolding: the address is on the node and announced.
	VIPHolding VIPState = "Holding"
	// VIPWaiting: the node owns the address but waits until the previous
	// owner must have stopped announcing it.
	VIPWaiting VIPState = "Waiting"
	// VIPReleased: the node removed the address at the epoch it names, as
	// asked by a planned hand-off, or because the ownership was taken away
	// (the FailoverIP is being deleted or is in conflict).
	VIPReleased VIPState = "Released"
	// VIPFenced: the node removed the address because it could prove neither
	// its own liveness nor that no other node holds it.
	VIPFenced VIPState = "Fenced"
	// VIPOwnerUnheard: the node is a voter of the epoch it names and has
	// not heard that epoch's owner for deadtime; it will never vouch for it
	// at that epoch again, so the owner can no longer hold the address
	// through its peers.
	VIPOwnerUnheard VIPState = "OwnerUnheard"
)

// FrontNodeSpec is one node taking part in one or more farms. The controller
// writes it; users change it only through the node's drain annotation.
type FrontNodeSpec struct {
	// nodeName is the Node this front runs on.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="nodeName is immutable"
	NodeName string `json:"nodeName"`

	// address is the node's address that HAProxy, the drain rules and the
	// agents' heartbeats use: its InternalIP, else its first address.
	// +required
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="address must be an IPv4 or IPv6 address"
	Address string `json:"address"`

	// cookie is the value of the sticky cookie that names this front. It is
	// random, stable for the life of the FrontNode, and says nothing about the
	// host.
	// +required
	// +kubebuilder:validation:Pattern=`^[a-z0-9]{4,32}$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="cookie is immutable: clients hold it"
	Cookie string `json:"cookie"`

	// drainRequested mirrors the node's webfarm.io/drain annotation.
	// +optional
	DrainRequested bool `json:"drainRequested,omitempty"`

	// farms lists the WebFarms, as "namespace/name", that select this node.
	// +optional
	// +listType=set
	Farms []string `json:"farms,omitempty"`

	// failoverIPs lists the FailoverIPs with a nodeSelector, as
	// "namespace/name", that select this node: a back-end node (a database
	// server) has a FrontNode too, with no farms, so that its agent
	// heartbeats, checks and holds their addresses.
	// +optional
	// +listType=set
	FailoverIPs []string `json:"failoverIPs,omitempty"`
}

// FrontNodeStatus is written in two parts: phase and heartbeat by the
// controller, proxy, servers and failoverIPs by the node's agent.
type FrontNodeStatus struct {
	// observedGeneration is the generation of the spec the controller acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is where the front stands in its drain cycle.
	// +optional
	Phase FrontPhase `json:"phase,omitempty"`

	// lastHeartbeatTime is when the controller last saw the node's Lease
	// renewed, by the controller's own clock.
	// +optional
	LastHeartbeatTime *metav1.Time `json:"lastHeartbeatTime,omitempty"`

	// sessions counts, while the front drains, the sessions that the active
	// proxies hold on it, main and backup servers together; Draining becomes
	// Drained at zero. Absent otherwise: agents report session counts only
	// for draining fronts, so that steady traffic costs no API write
	// (HAProxy's exporter counts them all the time).
	// +optional
	Sessions *int32 `json:"sessions,omitempty"`

	// proxy is the state of the node's HAProxy, as its agent reports it.
	// +optional
	Proxy ProxyStatus `json:"proxy,omitempty"`

	// servers lists every server of this node's HAProxy with its state and
	// current sessions, as read from its runtime API.
	// +optional
	// +listType=atomic
	Servers []ServerStatus `json:"servers,omitempty"`

	// failoverIPs reports what the agent does with each FailoverIP this node
	// owns or has just released.
	// +optional
	// +listType=map
	// +listMapKey=name
	FailoverIPs []NodeFailoverIPStatus `json:"failoverIPs,omitempty"`

	// shuttingDown is set by an agent that stops gracefully, so that the
	// controller hands its addresses off at once.
	// +optional
	ShuttingDown bool `json:"shuttingDown,omitempty"`

	// serving says, for each FailoverIP this node may hold, whether the node
	// can serve it: its HAProxy answers on the farms' frontends, the link of
	// the address is up and, when the FailoverIP lists pingTargets, one of
	// them answers. A front that does not serve is no candidate while another
	// one serves. A FailoverIP missing here counts as served.
	// +optional
	// +listType=map
	// +listMapKey=name
	Serving []ServingStatus `json:"serving,omitempty"`

	// unheardFronts lists the fronts this node's agent sends peer
	// heartbeats to and has heard none from for a deadtime, sorted. The
	// controller makes no such front a candidate: it is likely dead, or
	// cut off from its peers, and its Lease is renewed too rarely to tell.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=253
	UnheardFronts []string `json:"unheardFronts,omitempty"`

	// peerKeys are the Ed25519 public keys, in standard base64, that this
	// node's agent signs its peer heartbeats with: its peers accept a
	// heartbeat of this node only when one of them verifies it. Two during
	// a rotation, the next key published before it signs. Only the node's
	// own agent writes them (the chart's own-node admission policy), so that
	// no front can publish a key for another and speak for it.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=2
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9+/]{43}=$`
	PeerKeys []string `json:"peerKeys,omitempty"`

	// sites lists the Sites this node's HAProxy serves, each with the
	// generation it serves; written by the node's agent.
	// +optional
	// +listType=map
	// +listMapKey=name
	Sites []NodeSiteStatus `json:"sites,omitempty"`
	// checks reports, for each FailoverIP with health checks that selects
	// this node, what its agent's checks find.
	// +optional
	// +listType=map
	// +listMapKey=name
	Checks []NodeChecksStatus `json:"checks,omitempty"`

	// hooks reports, for each FailoverIP, the last notify hook the agent ran.
	// +optional
	// +listType=map
	// +listMapKey=name
	Hooks []HookRun `json:"hooks,omitempty"`

	// uploads reports, for each declared directory of this node's farms,
	// how far its agent has synced it with the other fronts.
	// +optional
	// +listType=map
	// +listMapKey=name
	Uploads []NodeUploadsStatus `json:"uploads,omitempty"`

	// conditions: Ready (the front serves), ProxyHealthy (HAProxy runs the
	// wanted configuration).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ProxyStatus is the state of a node's HAProxy.
type ProxyStatus struct {
	// configHash identifies the configuration HAProxy runs.
	// +optional
	ConfigHash string `json:"configHash,omitempty"`
	// lastReloadTime is when HAProxy last loaded a new configuration.
	// +optional
	LastReloadTime *metav1.Time `json:"lastReloadTime,omitempty"`
	// healthy is true while HAProxy runs the wanted configuration.
	// +optional
	Healthy bool `json:"healthy"`
	// message says why the proxy is not healthy, e.g. the error of
	// "haproxy -c" for a refused configuration.
	// +optional
	Message string `json:"message,omitempty"`
}

// ServerStatus is one server of a node's HAProxy.
type ServerStatus struct {
	// farm is the WebFarm, as "namespace/name".
	Farm string `json:"farm"`
	// front is the node this server points at.
	Front string `json:"front"`
	// role tells the main server from its backup twin.
	Role ServerRole `json:"role"`
	// state as HAProxy reports it, e.g. UP, DOWN, DRAIN, MAINT.
	// +optional
	State string `json:"state,omitempty"`
	// sessions is the server's current session count, reported while its
	// front drains; absent otherwise.
	// +optional
	Sessions *int32 `json:"sessions,omitempty"`
}

// NodeFailoverIPStatus is what an agent does with one FailoverIP.
type NodeFailoverIPStatus struct {
	// name of the FailoverIP, as "namespace/name".
	Name string `json:"name"`
	// uid of the FailoverIP this state refers to: a FailoverIP recreated
	// with the same name starts its epochs again, and this tells the two
	// apart.
	// +optional
	UID types.UID `json:"uid,omitempty"`
	// epoch of the FailoverIP's ownership this state refers to.
	Epoch int64 `json:"epoch"`
	// state of the address on this node.
	State VIPState `json:"state"`
	// observedGeneration is the generation of the FailoverIP whose spec this
	// state was decided with. The agent never acts on an older one again, so
	// the controller knows from it which timings an owner may still use.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// message says what the agent waits for, or why it fenced.
	// +optional
	Message string `json:"message,omitempty"`
	// reason is, for Fenced, why the node fenced in one CamelCase word:
	// ProofExpired, NewerView, StatusRolledBack, Superseded,
	// InvalidAddress, or Unrecorded (saved by an older agent). Alerts and
	// the fences metric count by it.
	// +optional
	Reason string `json:"reason,omitempty"`
	// unheardAfter is, for OwnerUnheard, the deadtime the node waited
	// without a word from the owner before reporting it: the controller
	// counts the report only when that is at least the longest deadtime the
	// owner may use (status.fencingTiming of the FailoverIP).
	// +optional
	// +kubebuilder:validation:Type=string
	UnheardAfter *metav1.Duration `json:"unheardAfter,omitempty"`
}

// ServingStatus is whether a node can serve one FailoverIP, as its agent's
// local checks find.
type ServingStatus struct {
	// name of the FailoverIP, as "namespace/name".
	Name string `json:"name"`
	// serving is false once the checks failed fall times in a row, and true
	// again after rise successes.
	Serving bool `json:"serving"`
	// reason is ServingReasonServing, or names the check that failed.
	// +optional
	Reason string `json:"reason,omitempty"`
	// message says what the failed check saw.
	// +optional
	Message string `json:"message,omitempty"`
	// lastTransitionTime is when serving last changed.
	// +optional
	LastTransitionTime *metav1.Time `json:"lastTransitionTime,omitempty"`
}

// FrontNode reasons.
const (
	ReasonServing          = "Serving"
	ReasonDrainRequested   = "DrainRequested"
	ReasonDrained          = "Drained"
	ReasonHeartbeatExpired = "HeartbeatExpired"
	ReasonConfigApplied    = "ConfigApplied"
	ReasonConfigRejected   = "ConfigRejected"
	ReasonReloadFailed     = "ReloadFailed"
)

// ConditionProxyHealthy is True while a node's HAProxy runs the wanted
// configuration.
const ConditionProxyHealthy = "ProxyHealthy"

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=fn,categories=webfarm-all
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.address`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Sessions",type=integer,JSONPath=`.status.sessions`
// +kubebuilder:printcolumn:name="Proxy",type=string,JSONPath=`.status.conditions[?(@.type=="ProxyHealthy")].reason`
// +kubebuilder:printcolumn:name="Heartbeat",type=date,JSONPath=`.status.lastHeartbeatTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// FrontNode is one node taking part in the farms that select it. It is
// created, named after its Node and deleted by the operator.
type FrontNode struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is written by the controller.
	// +required
	Spec FrontNodeSpec `json:"spec"`

	// status is written by the controller and by the node's agent.
	// +optional
	Status FrontNodeStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// FrontNodeList is a list of FrontNodes.
type FrontNodeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FrontNode `json:"items"`
}

func init() {
	SchemeBuilder.Register(&FrontNode{}, &FrontNodeList{})
}
