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
}
