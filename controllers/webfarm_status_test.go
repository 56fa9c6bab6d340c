package controllers

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

func TestWebFarmStatus(t *testing.T) {
	front := func(phase webfarmv1.FrontPhase, proxyHealthy bool) webfarmv1.FrontNode {
		st := metav1.ConditionFalse
		if proxyHealthy {
			st = metav1.ConditionTrue
		}
		return webfarmv1.FrontNode{Status: webfarmv1.FrontNodeStatus{Phase: phase, Conditions: []metav1.Condition{{Type: ConditionProxyHealthy, Status: st}}}}
	}
	fip := func(addr, owner string) *webfarmv1.FailoverIP {
		return &webfarmv1.FailoverIP{Spec: webfarmv1.FailoverIPSpec{Address: addr}, Status: webfarmv1.FailoverIPStatus{Owner: owner}}
	}
	ok := front(webfarmv1.FrontActive, true)
	tests := []struct {
		name                          string
		obs                           farmObservation
		ready, degraded               metav1.ConditionStatus
		readyReason, degradedReason   string
		total, readyCount, drainCount int32
		owners                        string
	}{
		{"all ready", farmObservation{fronts: []webfarmv1.FrontNode{ok, ok}, names: []string{"vip"}, failoverIPs: []*webfarmv1.FailoverIP{fip("192.0.2.1", "a")}},
			metav1.ConditionTrue, metav1.ConditionFalse, webfarmv1.ReasonAllFrontsReady, webfarmv1.ReasonAllFrontsReady, 2, 2, 0, "a"},
		{"one draining", farmObservation{fronts: []webfarmv1.FrontNode{ok, front(webfarmv1.FrontDrained, true)}},
			metav1.ConditionTrue, metav1.ConditionTrue, webfarmv1.ReasonSomeFrontsNotReady, webfarmv1.ReasonFrontsDraining, 2, 1, 1, ""},
		{"one proxy unhealthy", farmObservation{fronts: []webfarmv1.FrontNode{ok, front(webfarmv1.FrontActive, false)}},
			metav1.ConditionTrue, metav1.ConditionTrue, webfarmv1.ReasonSomeFrontsNotReady, webfarmv1.ReasonSomeFrontsNotReady, 2, 1, 0, ""},
		{"none ready", farmObservation{fronts: []webfarmv1.FrontNode{front(webfarmv1.FrontDown, true)}},
			metav1.ConditionFalse, metav1.ConditionFalse, webfarmv1.ReasonNoFrontReady, webfarmv1.ReasonNoFrontReady, 1, 0, 0, ""},
		{"no front", farmObservation{},
			metav1.ConditionFalse, metav1.ConditionFalse, webfarmv1.ReasonNoFrontSelected, webfarmv1.ReasonNoFrontSelected, 0, 0, 0, ""},
		{"invalid selector", farmObservation{selectorErr: errors.New("bad operator")},
			metav1.ConditionFalse, metav1.ConditionFalse, webfarmv1.ReasonInvalidFrontSelector, webfarmv1.ReasonInvalidFrontSelector, 0, 0, 0, ""},
		{"missing FailoverIP", farmObservation{fronts: []webfarmv1.FrontNode{ok}, names: []string{"vip"}, failoverIPs: []*webfarmv1.FailoverIP{nil}},
			metav1.ConditionFalse, metav1.ConditionFalse, webfarmv1.ReasonFailoverIPNotFound, webfarmv1.ReasonFailoverIPNotFound, 1, 1, 0, ""},
		{"unowned FailoverIP", farmObservation{fronts: []webfarmv1.FrontNode{ok}, names: []string{"v1", "v2"}, failoverIPs: []*webfarmv1.FailoverIP{fip("192.0.2.1", "a"), fip("192.0.2.2", "")}},
			metav1.ConditionFalse, metav1.ConditionFalse, webfarmv1.ReasonFailoverIPUnowned, webfarmv1.ReasonFailoverIPUnowned, 1, 1, 0, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := webFarmStatus(webfarmv1.WebFarmStatus{}, 7, tt.obs, t0)
			if st.FrontsTotal != tt.total || st.FrontsReady != tt.readyCount || st.FrontsDraining != tt.drainCount || st.Owners != tt.owners || st.ObservedGeneration != 7 {
				t.Errorf("status %+v; want %d fronts, %d ready, %d draining, owners %q, observedGeneration 7", st, tt.total, tt.readyCount, tt.drainCount, tt.owners)
			}
			for _, want := range []struct {
				typ    string
				status metav1.ConditionStatus
				reason string
			}{{webfarmv1.ConditionReady, tt.ready, tt.readyReason}, {webfarmv1.ConditionDegraded, tt.degraded, tt.degradedReason}} {
				c := meta.FindStatusCondition(st.Conditions, want.typ)
				if c == nil || c.Status != want.status || c.Reason != want.reason || c.Message == "" {
					t.Errorf("%s = %+v, want %s/%s with a message", want.typ, c, want.status, want.reason)
				}
			}
		})
	}
}
