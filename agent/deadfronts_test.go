package agent

import (
	"maps"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/webfarm/webfarm/agent/deadfront"
	"github.com/webfarm/webfarm/agent/ownership"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// TestDeadFrontServers: which servers of this node's HAProxy a dead front
// takes down, as seen from front1 of shop/web.
func TestDeadFrontServers(t *testing.T) {
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	s := testSnapshot("front1", []*webfarmv1.FrontNode{
		front("front1", "10.0.0.11", false, "shop/web", "shop/api"),
		front("front2", "10.0.0.12", false, "shop/web", "shop/api"), // silent
		front("front3", "10.0.0.13", false, "shop/web"),             // heard
		front("front4", "10.0.0.14", true, "shop/web"),              // silent, draining
		front("front5", "10.0.0.15", false, "shop/web"),             // Down, never heard
		front("front6", "10.0.0.16", false, "other/site"),           // silent, not in this node's farms
		front("front7", "10.0.0.17", false, "shop/web"),             // silent, its agent shutting down
	}, farm("shop", "web", 5080, 5081), farm("shop", "api", 6080, 6081), farm("other", "site", 7080, 7081))
	s.fronts["front5"].Status.Phase = webfarmv1.FrontDown
	s.fronts["front7"].Status.ShuttingDown = true
	s.failoverIPs = map[string]*webfarmv1.FailoverIP{
		"shop/vip": {Spec: webfarmv1.FailoverIPSpec{Deadtime: metav1.Duration{Duration: 2 * time.Second}}},
	}
	silent, heard := now.Add(-3*time.Second), now.Add(-time.Second)
	view := func(fip string) []ownership.Peer {
		if fip != "shop/vip" {
			t.Fatalf("view of %q", fip)
		}
		return []ownership.Peer{{Node: "front1", LastHeard: silent}, {Node: "front2", LastHeard: silent},
			{Node: "front3", LastHeard: heard}, {Node: "front4", LastHeard: silent}, {Node: "front6", LastHeard: silent}, {Node: "front7", LastHeard: silent}}
	}

	dead, why := deadFrontServers(s, view, &deadfront.Stops{}, now)
	servers := func(front string, backends ...string) []deadfront.Server {
		var out []deadfront.Server
		for _, b := range backends {
			out = append(out, deadfront.Server{Backend: b, Name: front}, deadfront.Server{Backend: b, Name: front + "-backup"})
		}
		return out
	}
	want := map[string][]deadfront.Server{
		"front2": servers("front2", "farm_shop_api", "farm_shop_web"),
		"front5": servers("front5", "farm_shop_web"),
	}
	if !maps.EqualFunc(dead, want, slices.Equal) {
		t.Errorf("dead = %v, want %v (front1 is this node, front3 is heard, front4 drains, front6 serves another farm, front7's agent restarts)", dead, want)
	}
	if why["front2"] == "" || why["front5"] != "its FrontNode is Down" {
		t.Errorf("why = %q", why)
	}
}
