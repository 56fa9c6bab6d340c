package agent

import (
	"net/netip"
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/webfarm/webfarm/agent/heartbeat"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// After a hard-loss move the stale owner, front1, is neither owner nor
// candidate any more: the new owner's heartbeats must reach it all the same,
// so that it hears the later epoch and drops the address.
func TestHeartbeatReachesEveryFrontThatMayHold(t *testing.T) {
	web := farm("shop", "web", 5080, 5081)
	web.Spec.FailoverIPs = []string{"www"}
	s := testSnapshot("front2", []*webfarmv1.FrontNode{
		front("front1", "10.0.0.11", false, "shop/web"),
		front("front2", "10.0.0.12", false, "shop/web"),
		front("front3", "10.0.0.13", false),
		front("front4", "10.0.0.14", false, "shop/web"),
		front("front5", "10.0.0.15", false, "other/api"),
	}, web, farm("other", "api", 6080, 6081))
	fip := &webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "www"}}
	fip.Status = webfarmv1.FailoverIPStatus{Owner: "front2", Epoch: 8, PreviousOwner: "front9", Candidates: []string{"front2", "front3"}}
	s.failoverIPs = map[string]*webfarmv1.FailoverIP{"shop/www": fip}
	f := newFailover(&Agent{}, t.TempDir()+"/ownership.json")

	targets, claims := f.heartbeat(s)
	// front1 and front4 are fronts of the farm, front3 a candidate; front9,
	// the previous owner, has no FrontNode left to send to; front5 serves
	// another farm.
	if want := []string{"front1", "front3", "front4"}; !reflect.DeepEqual(targets, want) {
		t.Errorf("targets = %v, want %v", targets, want)
	}
	want := []heartbeat.Claim{{FailoverIP: "shop/www", SeenOwner: "front2", SeenEpoch: 8}}
	if !reflect.DeepEqual(claims, want) {
		t.Errorf("claims = %+v, want %+v", claims, want)
	}

	m := membership(s, 7694)
	wantFronts := map[string]netip.AddrPort{
		"front1": netip.MustParseAddrPort("10.0.0.11:7694"), "front3": netip.MustParseAddrPort("10.0.0.13:7694"),
		"front4": netip.MustParseAddrPort("10.0.0.14:7694"), "front5": netip.MustParseAddrPort("10.0.0.15:7694"),
	}
	if !reflect.DeepEqual(m.Fronts, wantFronts) || !reflect.DeepEqual(m.FailoverIPs, []string{"shop/www"}) {
		t.Errorf("membership = %+v, want fronts %v and shop/www", m, wantFronts)
	}
}
