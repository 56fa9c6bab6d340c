package agent

import (
	"fmt"
	"net/http"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// apiTimeout bounds every request of the agent's direct client, as a
// backstop: each call carries a tighter deadline of its own, but a request
// made without one (a discovery request, a call added later) must not hang
// for minutes on an API server whose packets are dropped.
const apiTimeout = 10 * time.Second

// NewAPIClient returns the client through which the agent reaches the API
// server directly (its Lease, its FrontNode status, the witnesses
// of the FailoverIPs it owns, the Secrets and ConfigMaps of its farms), from cfg, the manager's configuration. Every
// request it makes ends after apiTimeout at the latest, and it maps those
// kinds without discovery, whose requests carry no context and so no
// deadline. The manager's own configuration keeps no timeout: it would cut
// its watches.
func NewAPIClient(cfg *rest.Config, scheme *runtime.Scheme) (client.Client, error) {
	direct := rest.CopyConfig(cfg)
	direct.Timeout = apiTimeout
	direct.Wrap(func(rt http.RoundTripper) http.RoundTripper { return timedTransport{next: rt} })
	c, err := client.New(direct, client.Options{Scheme: scheme, Mapper: directKinds()})
	if err != nil {
		return nil, fmt.Errorf("creating the API client: %w", err)
	}
	return c, nil
}

// directKinds maps the kinds the agent reads and writes through its direct
// client; any other kind is an error, not a discovery request.
func directKinds() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(coordinationv1.SchemeGroupVersion.WithKind("Lease"), meta.RESTScopeNamespace)
	m.Add(corev1.SchemeGroupVersion.WithKind("Secret"), meta.RESTScopeNamespace)
	m.Add(corev1.SchemeGroupVersion.WithKind("ConfigMap"), meta.RESTScopeNamespace)
	m.Add(webfarmv1.GroupVersion.WithKind("FrontNode"), meta.RESTScopeRoot)
	m.Add(webfarmv1.GroupVersion.WithKind("FailoverIP"), meta.RESTScopeNamespace)
	return m
}
