package controllers

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/sites"
)

// siteWorld is what the status of Sites depends on, from the cache: every
// Site, WebFarm and FailoverIP address, in every namespace.
type siteWorld struct {
	sites     []*webfarmv1.Site
	farms     map[string]*webfarmv1.WebFarm // by "namespace/name"
	addresses map[string]string             // FailoverIP "namespace/name" -> address
	fronts    map[string][]string           // WebFarm "namespace/name" -> its fronts' nodes
}

// acceptance is the Accepted condition of site, given the conflicts of
// every claim (sites.Resolve).
func (w siteWorld) acceptance(site *webfarmv1.Site, refused map[string]sites.Conflict) metav1.Condition {
	c := metav1.Condition{Type: webfarmv1.SiteAccepted, Status: metav1.ConditionFalse}
	farm := w.farms[sites.FarmKey(site)]
	switch conflict, bad := refused["Site "+farmKey(site.Namespace, site.Name)]; {
	case farm == nil:
		c.Reason, c.Message = webfarmv1.ReasonWebFarmNotFound, fmt.Sprintf("WebFarm %s does not exist", sites.FarmKey(site))
	case sites.TLSPort(site) == sites.FarmPort(farm):
		c.Reason, c.Message = webfarmv1.ReasonTLSPortIsHTTPPort, fmt.Sprintf("spec.tls.port %d is the plain HTTP port of WebFarm %s", sites.TLSPort(site), sites.FarmKey(site))
	case bad:
		c.Reason = webfarmv1.ReasonConflict
		c.Message = fmt.Sprintf("Site %s is not served: %s, which came first", farmKey(site.Namespace, site.Name), conflict)
	default:
		c.Status, c.Reason = metav1.ConditionTrue, webfarmv1.ReasonSiteAccepted
		c.Message = "served by WebFarm " + sites.FarmKey(site)
	}
	return c
}

// certificateCondition turns the check of a site's certificate into its
// CertificateValid condition; err is nil for a valid one.
func certificateCondition(site *webfarmv1.Site, err error) metav1.Condition {
	c := metav1.Condition{Type: webfarmv1.SiteCertificateValid, Status: metav1.ConditionTrue}
	var ce *sites.CertificateError
	switch {
	case site.Spec.TLS == nil:
		c.Reason, c.Message = webfarmv1.ReasonNoTLS, "the site is served in plain HTTP only"
	case err == nil:
		c.Reason, c.Message = webfarmv1.ReasonCertificateValid, "Secret "+site.Spec.TLS.SecretName+" is loaded for HTTPS"
	case errors.As(err, &ce):
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ce.Reason, "Secret "+site.Spec.TLS.SecretName+": "+ce.Detail+"; it is not loaded"
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, webfarmv1.ReasonSecretNotFound, err.Error()
	}
	return c
}

// siteStatus is the whole status the controller writes for site.
func siteStatus(site *webfarmv1.Site, w siteWorld, refused map[string]sites.Conflict, certErr error, now metav1.Time) webfarmv1.SiteStatus {
	st := webfarmv1.SiteStatus{ObservedGeneration: site.Generation, Conditions: append([]metav1.Condition(nil), site.Status.Conditions...)}
	for _, c := range []metav1.Condition{w.acceptance(site, refused), certificateCondition(site, certErr)} {
		c.ObservedGeneration, c.LastTransitionTime = site.Generation, now
		meta.SetStatusCondition(&st.Conditions, c)
	}
	if farm := w.farms[sites.FarmKey(site)]; farm != nil {
		var eps []string
		for _, e := range sites.SiteEndpoints(site, farm, w.addresses) {
			scheme := "http://"
			if e.TLS {
				scheme = "https://"
			}
			eps = append(eps, scheme+e.String())
		}
		st.Endpoints = strings.Join(eps, ",")
	}
	return st
}

// siteFronts counts the fronts where site is live, by their reports: their
// HAProxy serves its generation and, where the agent manages nginx, so
// does nginx's vhost. Its VhostApplied condition names every front whose
// nginx refused the vhost, with nginx's message.
func siteFronts(site *webfarmv1.Site, fronts []webfarmv1.FrontNode) (int32, metav1.Condition) {
	name := farmKey(site.Namespace, site.Name)
	var live, vhosts int32
	var refusals []string
	for _, f := range fronts {
		i := slices.IndexFunc(f.Status.Sites, func(s webfarmv1.NodeSiteStatus) bool { return s.Name == name })
		if i < 0 {
			continue
		}
		s := f.Status.Sites[i]
		managed := s.VhostGeneration != 0 || s.VhostRefused != ""
		if s.Generation == site.Generation && (!managed || s.VhostGeneration == site.Generation && s.VhostRefused == "") {
			live++
		}
		if s.VhostGeneration == site.Generation {
			vhosts++
		}
		if s.VhostRefused != "" {
			refusals = append(refusals, fmt.Sprintf("front %s: %s", f.Name, s.VhostRefused))
		}
	}
	return live, vhostCondition(site, vhosts, refusals)
}

func vhostCondition(site *webfarmv1.Site, vhosts int32, refusals []string) metav1.Condition {
	c := metav1.Condition{Type: webfarmv1.SiteVhostApplied, Status: metav1.ConditionTrue}
	switch {
	case site.Spec.WebServer == nil:
		c.Reason, c.Message = webfarmv1.ReasonNoWebServer, "the site declares no webServer: its vhosts are left to you"
	case len(refusals) > 0:
		slices.Sort(refusals)
		c.Status, c.Reason = metav1.ConditionFalse, webfarmv1.ReasonVhostRefused
		c.Message = truncate(strings.Join(refusals, "; ")+"; each keeps serving the site's previous vhost", maxConditionMessage)
	default:
		c.Reason = webfarmv1.ReasonVhostApplied
		c.Message = fmt.Sprintf("nginx serves this generation's vhost on %d fronts", vhosts)
	}
	return c
}

// maxConditionMessage is the API server's limit on a condition's message.
const maxConditionMessage = 32768

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n-3], "") + "..."
}
