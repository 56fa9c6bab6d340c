package agent

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

func TestSameReportAsStored(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.Local)
	ours := report{Proxy: webfarmv1.ProxyStatus{Healthy: true, LastReloadTime: &metav1.Time{Time: now}}, Servers: []webfarmv1.ServerStatus{}}
	stored := report{Proxy: webfarmv1.ProxyStatus{Healthy: true, LastReloadTime: &metav1.Time{Time: now.Truncate(time.Second).UTC()}}}
	if !sameReport(ours, stored) {
		t.Error("a report and its stored form differ: the agent would write it forever")
	}
	stored.Proxy.Healthy = false
	if sameReport(ours, stored) {
		t.Error("a changed report compares equal: the agent would not repair it")
	}
	stored.Proxy.Healthy = true
	ours.Serving = []webfarmv1.ServingStatus{{Name: "ns/vip", Serving: false, Reason: webfarmv1.ServingReasonLinkDown, LastTransitionTime: &metav1.Time{Time: now}}}
	stored.Serving = []webfarmv1.ServingStatus{{Name: "ns/vip", Serving: false, Reason: webfarmv1.ServingReasonLinkDown, LastTransitionTime: &metav1.Time{Time: now.Truncate(time.Second).UTC()}}}
	if !sameReport(ours, stored) {
		t.Error("a serving verdict and its stored form differ: the agent would write it forever")
	}
	if ours.Serving[0].LastTransitionTime.Time != now {
		t.Error("comparing reports changed the agent's own serving verdict")
	}
	stored.Serving[0].Serving = true
	if sameReport(ours, stored) {
		t.Error("a changed serving verdict compares equal: the agent would not repair it")
	}
}
