package controllers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// farmObservation is what a WebFarm's status is computed from.
type farmObservation struct {
	// selectorErr: spec.frontSelector does not parse.
	selectorErr error
	fronts      []webfarmv1.FrontNode
	// failoverIPs in the order of spec.failoverIPs; nil where one is missing.
	failoverIPs []*webfarmv1.FailoverIP
	// names of spec.failoverIPs.
	names []string
	// conflict, when set, says why no front serves the farm (farmConflict).
	conflict string
}

// frontCounts summarises the fronts of a farm.
type frontCounts struct{ total, ready, draining int32 }

func countFronts(fronts []webfarmv1.FrontNode) frontCounts {
	var c frontCounts
	for i := range fronts {
		st := &fronts[i].Status
		c.total++
		switch {
		case st.Phase == webfarmv1.FrontDraining || st.Phase == webfarmv1.FrontDrained:
			c.draining++
		case st.Phase == webfarmv1.FrontActive && meta.IsStatusConditionTrue(st.Conditions, ConditionProxyHealthy):
			c.ready++
		}
	}
	return c
}

// webFarmStatus is the status to write for a farm.
func webFarmStatus(cur webfarmv1.WebFarmStatus, generation int64, obs farmObservation, now time.Time) webfarmv1.WebFarmStatus {
	st := *cur.DeepCopy()
	st.ObservedGeneration = generation
	c := countFronts(obs.fronts)
	st.FrontsTotal, st.FrontsReady, st.FrontsDraining = c.total, c.ready, c.draining
	st.FailoverIPs, st.Owners = farmFailoverIPs(obs)
	ready := farmReady(obs, c)
	setCondition(&st.Conditions, ready, generation, now)
	setCondition(&st.Conditions, farmDegraded(c, ready), generation, now)
	return st
}

func farmFailoverIPs(obs farmObservation) ([]webfarmv1.WebFarmFailoverIPStatus, string) {
	var out []webfarmv1.WebFarmFailoverIPStatus
	var owners []string
	for i, name := range obs.names {
		s := webfarmv1.WebFarmFailoverIPStatus{Name: name}
		if fip := obs.failoverIPs[i]; fip != nil {
			s.Address, s.Owner = fip.Spec.Address, fip.Status.Owner
		}
		if s.Owner != "" && !slices.Contains(owners, s.Owner) {
			owners = append(owners, s.Owner)
		}
		out = append(out, s)
	}
	return out, strings.Join(owners, ",")
}

// farmReady: the farm is served on all its addresses. Its reason and
// message say what to do when it is not.
func farmReady(obs farmObservation, c frontCounts) metav1.Condition {
	no := func(reason, msg string, args ...any) metav1.Condition {
		return metav1.Condition{Type: webfarmv1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: fmt.Sprintf(msg, args...)}
	}
	if obs.selectorErr != nil {
		return no(webfarmv1.ReasonInvalidFrontSelector, "spec.frontSelector is invalid: %v", obs.selectorErr)
	}
	if obs.conflict != "" {
		return no(webfarmv1.ReasonConflict, "%s", obs.conflict)
	}
	if c.total == 0 {
		return no(webfarmv1.ReasonNoFrontSelected, "No Node matches spec.frontSelector: label the front nodes or fix the selector")
	}
	for i, name := range obs.names {
		if obs.failoverIPs[i] == nil {
			return no(webfarmv1.ReasonFailoverIPNotFound, "FailoverIP %s, listed in spec.failoverIPs, does not exist in this namespace: create it or remove it from the list", name)
		}
	}
	for i, name := range obs.names {
		if obs.failoverIPs[i].Status.Owner == "" {
			return no(webfarmv1.ReasonFailoverIPUnowned, "No front holds FailoverIP %s (%s): see its Ready condition", name, obs.failoverIPs[i].Spec.Address)
		}
	}
	if c.ready == 0 {
		return no(webfarmv1.ReasonNoFrontReady, "None of the %d fronts is Active with a healthy HAProxy: see 'kubectl get frontnodes'", c.total)
	}
	yes := metav1.Condition{Type: webfarmv1.ConditionReady, Status: metav1.ConditionTrue, Reason: webfarmv1.ReasonAllFrontsReady,
		Message: fmt.Sprintf("All %d fronts serve the farm", c.total)}
	if c.ready < c.total {
		yes.Reason, yes.Message = webfarmv1.ReasonSomeFrontsNotReady, fmt.Sprintf("Served by %d of %d fronts", c.ready, c.total)
	}
	return yes
}

// farmDegraded: the farm is served with fewer fronts than it has.
func farmDegraded(c frontCounts, ready metav1.Condition) metav1.Condition {
	d := metav1.Condition{Type: webfarmv1.ConditionDegraded, Status: metav1.ConditionFalse, Reason: ready.Reason, Message: ready.Message}
	switch {
	case ready.Status != metav1.ConditionTrue:
		d.Message = "The farm is not served: see the Ready condition"
	case c.ready+c.draining == c.total && c.draining > 0:
		d.Status, d.Reason = metav1.ConditionTrue, webfarmv1.ReasonFrontsDraining
		d.Message = fmt.Sprintf("%d of %d fronts are draining; undrain them with 'kubectl annotate node <node> %s-'", c.draining, c.total, webfarmv1.DrainAnnotation)
	case c.ready < c.total:
		d.Status, d.Reason = metav1.ConditionTrue, webfarmv1.ReasonSomeFrontsNotReady
		d.Message = fmt.Sprintf("%d of %d fronts are not ready (%d draining): see 'kubectl get frontnodes'", c.total-c.ready, c.total, c.draining)
	}
	return d
}
