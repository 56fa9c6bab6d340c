package controllers

// The controller's permissions, least privilege: it reads Nodes and the
// heartbeat Leases, reads the Secret a Site names (in farm namespaces
// only, whose Secrets' metadata it watches) to check its certificate, owns
// FrontNodes, writes only the
// status of WebFarms, Sites and FailoverIPs and the finalizer of FailoverIPs, and sends events (events.k8s.io/v1). The Lease rule of the
// operator namespace also covers leader election, which records its own
// events through the core API there.
//
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=webfarm.io,resources=webfarms;failoverips;sites,verbs=get;list;watch
// +kubebuilder:rbac:groups=webfarm.io,resources=sites/status,verbs=get;update
// +kubebuilder:rbac:groups=webfarm.io,resources=failoverips,verbs=patch
// +kubebuilder:rbac:groups=webfarm.io,resources=failoverips/finalizers,verbs=update
// +kubebuilder:rbac:groups=webfarm.io,resources=webfarms/status;failoverips/status,verbs=get;update
// +kubebuilder:rbac:groups=webfarm.io,resources=frontnodes,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=webfarm.io,resources=frontnodes/status,verbs=get;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch,namespace=webfarm-system
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch,namespace=webfarm-system
//
// Secrets: only in the namespaces holding Sites (--farm-namespaces), read
// by name and watched by their metadata alone: a Role of its own in each
// (config/manager/farm_role.yaml; the chart's farmNamespaces).
