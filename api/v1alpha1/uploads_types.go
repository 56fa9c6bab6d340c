package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// UploadsSpec keeps directories identical on every front of a farm, as the
// original setup's inotify and rsync did: what a user uploads to one front
// is found on all of them. It lives on the WebFarm rather than on a Site
// because the fronts that must agree, the rsync daemon and its secret are
// the farm's, and an application behind a Site's proxy has upload
// directories too. A farm on shared storage (NFS, CephFS) declares none.
// +kubebuilder:validation:XValidation:rule="self.directories.all(a, self.directories.exists_one(b, b.path == a.path))",message="directories must not list the same path twice",fieldPath=".directories"
// +kubebuilder:validation:XValidation:rule="self.directories.all(a, self.directories.all(b, a.name == b.name || !b.path.startsWith(a.path + '/')))",message="directories must not be nested: a path inside another would be synced twice",fieldPath=".directories"
type UploadsSpec struct {
	// directories to keep identical on every front, each served to the
	// other fronts as one rsync module.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Directories []UploadDirectory `json:"directories"`

	// port of the rsync daemon that every front runs on its own address,
	// which only the farm's fronts may reach.
	// +optional
	// +kubebuilder:default=8873
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// secretName names the Secret, in this namespace, whose key "password"
	// authenticates the fronts to each other's rsync daemon. The controller
	// creates it with a random password when it does not exist; defaults to
	// "<farm>-uploads".
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	SecretName string `json:"secretName,omitempty"`

	// bandwidthLimitKiBps caps each transfer to a peer, in KiB/s (rsync's
	// --bwlimit); 0 sets no limit.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000000
	BandwidthLimitKiBps int32 `json:"bandwidthLimitKiBps,omitempty"`

	// maxLag is how old a front's oldest unsynced change may be before the
	// farm's UploadsInSync condition turns False.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="maxLag must be between 1s and 24h"
	MaxLag metav1.Duration `json:"maxLag,omitempty"`
}

// UploadDirectory is one directory kept identical on every front, with the
// owner, group and modes its files and directories must have there.
// +kubebuilder:validation:XValidation:rule="self.path != '/'",message="path must not be '/'",fieldPath=".path"
// +kubebuilder:validation:XValidation:rule="!self.path.split('/').exists(p, p == '..' || p == '.')",message="path must not hold '..' or '.'",fieldPath=".path"
type UploadDirectory struct {
	// name of the directory within the farm: the rsync module that holds it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// path of the directory on every front: absolute, of letters, digits,
	// '.', '_', '-' and '/', without "..", not "/".
	// +required
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$`
	Path string `json:"path"`

	// owner is the numeric user id that owns the directory's files and
	// directories on every front (numeric, because names differ between the
	// agent's image and the host).
	// +optional
	// +kubebuilder:default=33
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	Owner int64 `json:"owner"`

	// group is the numeric group id of the directory's files and directories.
	// +optional
	// +kubebuilder:default=33
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	Group int64 `json:"group"`

	// fileMode is the octal permission of every file, e.g. "0644".
	// +optional
	// +kubebuilder:default="0644"
	// +kubebuilder:validation:Pattern=`^0?[0-7]{3}$`
	FileMode string `json:"fileMode,omitempty"`

	// directoryMode is the octal permission of every directory, e.g. "0755".
	// +optional
	// +kubebuilder:default="0755"
	// +kubebuilder:validation:Pattern=`^0?[0-7]{3}$`
	DirectoryMode string `json:"directoryMode,omitempty"`
}

// NodeUploadsStatus is how far one front's agent has synced one declared
// directory with the other fronts.
type NodeUploadsStatus struct {
	// name of the directory, as "namespace/farm/directory".
	Name string `json:"name"`
	// caughtUp is true once the directory matched the other fronts' at the
	// agent's catch-up. Until then the front's servers stay in drain on
	// every front's HAProxy, so that no client reads a missing file there.
	CaughtUp bool `json:"caughtUp"`
	// pending counts the local changes not yet propagated to every front.
	// +optional
	Pending int32 `json:"pending,omitempty"`
	// oldestPendingTime is when the oldest of them happened.
	// +optional
	OldestPendingTime *metav1.Time `json:"oldestPendingTime,omitempty"`
	// lastError is the last failure to propagate or catch up, cleared by
	// the next success.
	// +optional
	LastError string `json:"lastError,omitempty"`
}

// ConditionUploadsInSync is a WebFarm condition: True while every front's
// declared directories are caught up and none has a change older than
// spec.uploads.maxLag left unsynced. Absent when the farm declares none.
const ConditionUploadsInSync = "UploadsInSync"

// UploadsInSync reasons.
const (
	ReasonUploadsInSync    = "InSync"
	ReasonUploadsLagging   = "Lagging"
	ReasonUploadsCatchUp   = "CatchingUp"
	ReasonUploadsSyncError = "SyncError"
)

// UploadsSecretKey is the key of the uploads Secret that holds the rsync
// password shared by the farm's fronts.
const UploadsSecretKey = "password"

// UploadsSecretName is the Secret that authenticates farm's fronts to each
// other's rsync daemon.
func UploadsSecretName(farm string, spec *UploadsSpec) string {
	if spec != nil && spec.SecretName != "" {
		return spec.SecretName
	}
	return farm + "-uploads"
}
