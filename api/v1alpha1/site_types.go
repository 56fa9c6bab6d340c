package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Hostname is a DNS name in lower case, or a wildcard "*.<name>" that covers
// exactly one more label in front of name ("*.example.com" covers
// www.example.com, not a.b.example.com nor example.com): the rule of TLS
// certificates and of HAProxy's SNI, which webfarm's routing and nginx
// vhosts follow too.
// +kubebuilder:validation:MinLength=3
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:Pattern=`^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`
type Hostname string

// SiteSpec declares one website served by a WebFarm: its names, its
// certificate, and what the web server on every front does for it.
// +kubebuilder:validation:XValidation:rule="!has(self.redirectToHTTPS) || !self.redirectToHTTPS || has(self.tls)",message="redirectToHTTPS needs tls",fieldPath=".redirectToHTTPS"
// +kubebuilder:validation:XValidation:rule="!has(self.hsts) || has(self.tls)",message="hsts needs tls: browsers ignore it over plain HTTP",fieldPath=".hsts"
type SiteSpec struct {
	// hostnames the site answers to, routed by the Host header (and by SNI
	// over TLS). Exact names win over wildcards, as in HAProxy and nginx.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	Hostnames []Hostname `json:"hostnames"`

	// webFarmRef names the WebFarm, in this namespace, that serves the site:
	// its fronts, failover addresses and frontend port.
	// +required
	WebFarmRef LocalObjectReference `json:"webFarmRef"`

	// tls serves the site over HTTPS, terminated by HAProxy on every front.
	// +optional
	TLS *SiteTLS `json:"tls,omitempty"`

	// redirectToHTTPS answers plain HTTP requests with a permanent redirect
	// (301) to the same URL over HTTPS. It needs tls.
	// +optional
	RedirectToHTTPS bool `json:"redirectToHTTPS,omitempty"`

	// hsts adds a Strict-Transport-Security header to HTTPS answers. It
	// needs tls.
	// +optional
	HSTS *HSTSSpec `json:"hsts,omitempty"`

	// webServer is what nginx on every front does for the site. Without it
	// webfarm leaves the web server to you, as before.
	// +optional
	WebServer *SiteWebServer `json:"webServer,omitempty"`
}

// SiteTLS is where a site's certificate comes from and where HTTPS listens.
type SiteTLS struct {
	// secretName names a Secret of type kubernetes.io/tls, in this
	// namespace, holding tls.crt (the certificate, then its chain) and
	// tls.key; a cert-manager Certificate writes exactly that. A certificate
	// that does not match its key, has expired, or does not cover every
	// hostname is reported in the status and never loaded.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	SecretName string `json:"secretName"`

	// port is where HAProxy accepts HTTPS, on the farm's failover addresses.
	// It must differ from the farm's frontend port, which stays plain HTTP.
	// +optional
	// +kubebuilder:default=443
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`
}

// HSTSSpec is the Strict-Transport-Security header.
// +kubebuilder:validation:XValidation:rule="!has(self.preload) || !self.preload || (has(self.includeSubDomains) && self.includeSubDomains && self.maxAgeSeconds >= 31536000)",message="preload needs includeSubDomains and maxAgeSeconds of at least a year (31536000), as the preload list demands",fieldPath=".preload"
type HSTSSpec struct {
	// maxAgeSeconds is how long browsers remember to use HTTPS only.
	// +optional
	// +kubebuilder:default=31536000
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=63072000
	MaxAgeSeconds int64 `json:"maxAgeSeconds"`

	// includeSubDomains applies the rule to every subdomain too.
	// +optional
	IncludeSubDomains bool `json:"includeSubDomains,omitempty"`

	// preload asks browsers to ship the rule (hstspreload.org).
	// +optional
	Preload bool `json:"preload,omitempty"`
}

// SiteWebServer is the site's vhost in nginx on every front, on the farm's
// web port: it serves files from root, or passes requests to a local
// application (proxy), never both.
// +kubebuilder:validation:XValidation:rule="has(self.root) != has(self.proxy)",message="set exactly one of root and proxy"
type SiteWebServer struct {
	// root is the directory of the site's files on every front, an absolute
	// path of letters, digits, '.', '_', '-' and '/', without "..".
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/[A-Za-z0-9._/-]*$`
	// +kubebuilder:validation:XValidation:rule="!self.split('/').exists(p, p == '..')",message="root must not hold '..'"
	Root string `json:"root,omitempty"`

	// proxy passes every request to an application on the same front.
	// +optional
	Proxy *SiteProxy `json:"proxy,omitempty"`

	// index lists the files served for a directory, in order.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9._-]{1,64}$`
	Index []string `json:"index,omitempty"`

	// clientMaxBodySize is the largest request body nginx accepts, in
	// nginx's words: a number with an optional k or m suffix ("0": no limit).
	// +optional
	// +kubebuilder:default="1m"
	// +kubebuilder:validation:Pattern=`^[0-9]{1,6}[km]?$`
	ClientMaxBodySize string `json:"clientMaxBodySize,omitempty"`
}

// SiteProxy is the local application a vhost passes requests to: a TCP port
// on loopback, or a unix socket (as a Rails application behind nginx was).
// +kubebuilder:validation:XValidation:rule="has(self.port) != has(self.socket)",message="set exactly one of port and socket"
type SiteProxy struct {
	// port on 127.0.0.1 where the application listens.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// socket is the absolute path of the application's unix socket.
	// +optional
	// +kubebuilder:validation:MaxLength=107
	// +kubebuilder:validation:Pattern=`^/[A-Za-z0-9._/-]+$`
	// +kubebuilder:validation:XValidation:rule="!self.split('/').exists(p, p == '..')",message="socket must not hold '..'"
	Socket string `json:"socket,omitempty"`
}

// SiteStatus is what the controller observed of the site.
type SiteStatus struct {
	// observedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// endpoints lists where the site is served, as address:port ("*" for
	// every address of the fronts), plain HTTP then HTTPS, for printing.
	// +optional
	Endpoints string `json:"endpoints,omitempty"`

	// frontsServing counts the fronts where the site is live: their
	// HAProxy serves this generation of the site and, where the agent
	// manages nginx, so does its vhost (FrontNode status.sites).
	// +optional
	FrontsServing int32 `json:"frontsServing"`

	// conditions: Accepted (the site's names are its own on its addresses
	// and ports; False with reason Conflict names the other object),
	// CertificateValid (its certificate can be loaded; when False, the
	// fronts serve the site's other endpoints and not its HTTPS) and
	// VhostApplied (False with reason VhostRefused names each front whose
	// nginx refused the site's vhost, with nginx's message).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// NodeSiteStatus is one Site as a front's agent serves it.
type NodeSiteStatus struct {
	// name of the Site, as "namespace/name".
	Name string `json:"name"`
	// generation of the Site's spec that the front's HAProxy serves.
	Generation int64 `json:"generation"`
	// https is true when the front serves the site over HTTPS.
	// +optional
	HTTPS bool `json:"https,omitempty"`
	// message says what the front could not do for the site, such as
	// loading its certificate.
	// +optional
	Message string `json:"message,omitempty"`
	// vhostGeneration is the generation of the Site whose vhost nginx
	// serves on the front; absent when the agent does not manage nginx
	// there or nginx serves no vhost of the site yet.
	// +optional
	VhostGeneration int64 `json:"vhostGeneration,omitempty"`
	// vhostRefused is nginx's message when it refused the vhost of the
	// Site's generation; the vhost of vhostGeneration serves meanwhile.
	// +optional
	VhostRefused string `json:"vhostRefused,omitempty"`
}

// Site condition types.
const (
	// SiteAccepted is True when nothing else claims the site's names on
	// its addresses and ports, and its WebFarm exists.
	SiteAccepted = "Accepted"
	// SiteCertificateValid is True when the site's certificate matches its
	// key, is within its validity and covers every hostname; True with
	// reason NoTLS for a plain-HTTP site.
	SiteCertificateValid = "CertificateValid"
	// SiteVhostApplied is False when nginx on a front refused the site's
	// vhost, which then keeps serving its previous one; True with reason
	// NoWebServer for a site without webServer.
	SiteVhostApplied = "VhostApplied"
)

// Site reasons.
const (
	ReasonSiteAccepted       = "Accepted"
	ReasonWebFarmNotFound    = "WebFarmNotFound"
	ReasonTLSPortIsHTTPPort  = "TLSPortIsHTTPPort"
	ReasonNoTLS              = "NoTLS"
	ReasonCertificateValid   = "Valid"
	ReasonSecretNotFound     = "SecretNotFound"
	ReasonCertificateInvalid = "Invalid"
	ReasonKeyMismatch        = "KeyMismatch"
	ReasonCertificateExpired = "Expired"
	ReasonNotYetValid        = "NotYetValid"
	ReasonHostnameNotCovered = "HostnameNotCovered"
	ReasonNoWebServer        = "NoWebServer"
	ReasonVhostApplied       = "Applied"
	ReasonVhostRefused       = "VhostRefused"
)

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=webfarm-all
// +kubebuilder:printcolumn:name="Farm",type=string,JSONPath=`.spec.webFarmRef.name`
// +kubebuilder:printcolumn:name="Hostnames",type=string,JSONPath=`.spec.hostnames`
// +kubebuilder:printcolumn:name="Endpoints",type=string,JSONPath=`.status.endpoints`
// +kubebuilder:printcolumn:name="Fronts",type=integer,JSONPath=`.status.frontsServing`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].reason`
// +kubebuilder:printcolumn:name="Certificate",type=string,JSONPath=`.status.conditions[?(@.type=="CertificateValid")].reason`
// +kubebuilder:printcolumn:name="Vhost",type=string,JSONPath=`.status.conditions[?(@.type=="VhostApplied")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// Site is one website on a WebFarm: routed by Host on every front's
// HAProxy, over HTTPS with its own certificate, and optionally served by a
// vhost of nginx on every front.
type Site struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the site.
	// +required
	Spec SiteSpec `json:"spec"`

	// status is what the controller observed of the site.
	// +optional
	Status SiteStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// SiteList is a list of Sites.
type SiteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Site `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Site{}, &SiteList{})
}
