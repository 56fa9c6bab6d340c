package chart

import (
	"fmt"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// With the default metrics.secure, Prometheus scrapes every endpoint over
// HTTPS with its ServiceAccount's token, HAProxy's exporter included
// (through the agent), and the chart grants the binaries the reviews they
// ask the API server for and the scraper the paths it reads.
func TestTemplateSecuredScrape(t *testing.T) {
	objs := mustHelmTemplate(t, "--set", "metrics.service.enabled=true", "--set", "metrics.serviceMonitor.enabled=true",
		"--set", "metrics.scraper.serviceAccount.name=prometheus", "--set", "metrics.scraper.serviceAccount.namespace=monitoring")

	for _, tc := range []struct {
		monitor string
		want    []string // port path, per endpoint
	}{
		{"webfarm-controller-metrics", []string{"metrics /metrics"}},
		{"webfarm-agent-metrics", []string{"metrics /metrics", "metrics /metrics/haproxy"}},
	} {
		eps, _, _ := unstructured.NestedSlice(find(t, objs, "ServiceMonitor", namespace, tc.monitor).Object, "spec", "endpoints")
		var got []string
		for _, e := range eps {
			ep := e.(map[string]any)
			got = append(got, fmt.Sprintf("%s %s", ep["port"], ep["path"]))
			tls, _ := ep["tlsConfig"].(map[string]any)
			if ep["scheme"] != "https" || ep["bearerTokenFile"] != "/var/run/secrets/kubernetes.io/serviceaccount/token" || tls["insecureSkipVerify"] != true {
				t.Errorf("%s endpoint %v: want https with Prometheus's token and the chart's tlsConfig", tc.monitor, ep)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s endpoints %q, want %q", tc.monitor, got, tc.want)
		}
	}
	svc := find(t, objs, "Service", namespace, "webfarm-agent-metrics")
	if ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports"); len(ports) != 1 {
		t.Errorf("agent metrics Service ports %v: want metrics only, HAProxy's exporter is on loopback", ports)
	}

	auth := convert[rbacv1.ClusterRole](t, find(t, objs, "ClusterRole", "", "webfarm-metrics-auth"))
	if diff := permissionDiff(auth.Rules, []rbacv1.PolicyRule{
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
	}); diff != "" {
		t.Errorf("metrics-auth ClusterRole:\n%s", diff)
	}
	subjects := func(name string) []string {
		b := convert[rbacv1.ClusterRoleBinding](t, find(t, objs, "ClusterRoleBinding", "", name))
		var out []string
		for _, s := range b.Subjects {
			out = append(out, s.Kind+" "+s.Namespace+"/"+s.Name)
		}
		return out
	}
	if got, want := subjects("webfarm-metrics-auth"), []string{"ServiceAccount webfarm-system/webfarm-controller", "ServiceAccount webfarm-system/webfarm-agent"}; !slices.Equal(got, want) {
		t.Errorf("metrics-auth bound to %q, want %q", got, want)
	}
	if got, want := subjects("webfarm-metrics-reader"), []string{"ServiceAccount monitoring/prometheus"}; !slices.Equal(got, want) {
		t.Errorf("metrics-reader bound to %q, want %q", got, want)
	}
	reader := convert[rbacv1.ClusterRole](t, find(t, objs, "ClusterRole", "", "webfarm-metrics-reader"))
	if len(reader.Rules) != 1 || !slices.Equal(reader.Rules[0].NonResourceURLs, []string{"/metrics", "/metrics/haproxy"}) || !slices.Equal(reader.Rules[0].Verbs, []string{"get"}) {
		t.Errorf("metrics-reader rules %+v: want get on /metrics and /metrics/haproxy", reader.Rules)
	}
}

// metrics.secure=false serves plain HTTP: no reviews to grant, no token to
// send.
func TestTemplateUnsecuredScrape(t *testing.T) {
	objs := mustHelmTemplate(t, "--values", customValues)
	for _, o := range objs {
		if o.GetName() == "shopfarm-metrics-auth" {
			t.Errorf("metrics.secure=false still renders %s %s", o.GetKind(), o.GetName())
		}
	}
	eps, _, _ := unstructured.NestedSlice(find(t, objs, "ServiceMonitor", namespace, "shopfarm-agent-metrics").Object, "spec", "endpoints")
	for _, e := range eps {
		if ep := e.(map[string]any); ep["scheme"] != nil || ep["bearerTokenFile"] != nil {
			t.Errorf("endpoint %v of an unsecured agent: want plain HTTP without a token", ep)
		}
	}
}
