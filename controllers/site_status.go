package controllers

import (
	"errors"
	"fmt"
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
