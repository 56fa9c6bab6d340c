package agent

import (
	"net/netip"
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/webfarm/webfarm/agent/serving"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

func TestServingTargets(t *testing.T) {
	web := farm("shop", "web", 5080, 5081)
	web.Spec.Frontend.Port = 80
	web.Spec.FailoverIPs = []string{"vip", "gone"}
	tls := farm("shop", "tls", 5080, 5081)
	tls.Spec.Frontend.Port = 443
	tls.Spec.FailoverIPs = []string{"vip", "bad"}
	other := farm("other", "api", 6080, 6081)
	other.Spec.Frontend.Port = 8080
	other.Spec.FailoverIPs = []string{"vip"}
	s := testSnapshot("front1", []*webfarmv1.FrontNode{front("front1", "10.0.0.11", false, "shop/web", "shop/tls")}, web, tls, other)
	s.failoverIPs = map[string]*webfarmv1.FailoverIP{
		"shop/vip":  fipWith("shop", "vip", "eth1", "10.0.0.1", "2001:db8::1"),
		"shop/bad":  fipWith("shop", "bad", "", "not-an-ip"),
		"other/vip": fipWith("other", "vip", ""),
	}

	got, problems := servingTargets(s)
	want := []serving.Target{{
		Name: "shop/vip", Ports: []int32{443, 80}, Link: "eth1", NodeAddress: netip.MustParseAddr("10.0.0.11"),
		PingTargets: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("2001:db8::1")},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("targets = %+v\nwant %+v (other/vip: not a farm of front1; shop/gone: no such FailoverIP)", got, want)
	}
	if len(problems) != 1 {
		t.Errorf("problems = %v, want the bad ping target of shop/bad", problems)
	}
}

func fipWith(ns, name, link string, pings ...string) *webfarmv1.FailoverIP {
	return &webfarmv1.FailoverIP{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       webfarmv1.FailoverIPSpec{Interface: link, PingTargets: pings},
	}
}
