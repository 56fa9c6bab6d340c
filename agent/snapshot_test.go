package agent

import (
	"net/netip"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/webfarm/webfarm/agent/iptables"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

func front(name, addr string, drain bool, farms ...string) *webfarmv1.FrontNode {
	return &webfarmv1.FrontNode{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       webfarmv1.FrontNodeSpec{NodeName: name, Address: addr, DrainRequested: drain, Farms: farms},
	}
}

func farm(ns, name string, web, drain int32) *webfarmv1.WebFarm {
	wf := &webfarmv1.WebFarm{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	wf.Spec.Backend.WebPort, wf.Spec.Backend.DrainPort = web, drain
	return wf
}

func testSnapshot(node string, fronts []*webfarmv1.FrontNode, farms ...*webfarmv1.WebFarm) *snapshot {
	s := &snapshot{node: node, fronts: map[string]*webfarmv1.FrontNode{}, farms: map[string]*webfarmv1.WebFarm{}}
	for _, f := range fronts {
		s.fronts[f.Name] = f
	}
	for _, wf := range farms {
		s.farms[key(wf)] = wf
	}
	s.self = s.fronts[node]
	return s
}

func TestDrainRules(t *testing.T) {
	s := testSnapshot("front1", []*webfarmv1.FrontNode{
		front("front1", "10.0.0.11", false, "shop/web", "shop/missing"),
		front("front2", "10.0.0.12", true, "shop/web"),
		front("front3", "10.0.0.13", false, "shop/web", "other/api"),
		front("front4", "bad", false, "shop/web"),
	}, farm("shop", "web", 5080, 5081), farm("other", "api", 6080, 6081))

	rules, problems := drainRules(s, neverHeld)
	want := []iptables.Rule{
		{Front: netip.MustParseAddr("10.0.0.11"), DrainPort: 5081, WebPort: 5080, Comment: "shop/web front1"},
		{Front: netip.MustParseAddr("10.0.0.13"), DrainPort: 5081, WebPort: 5080, Comment: "shop/web front3"},
	}
	if len(rules) != len(want) {
		t.Fatalf("rules = %+v; want %+v (front2 drains, other/api is not a farm of front1)", rules, want)
	}
	for i := range want {
		if rules[i] != want[i] {
			t.Errorf("rule %d = %+v, want %+v", i, rules[i], want[i])
		}
	}
	if len(problems) != 1 {
		t.Errorf("problems = %v; want the bad address of front4", problems)
	}
}

func TestDrainRulesBeforeTheFrontNodeExists(t *testing.T) {
	s := testSnapshot("front9", []*webfarmv1.FrontNode{front("front1", "10.0.0.11", false, "shop/web")}, farm("shop", "web", 5080, 5081))
	if rules, _ := drainRules(s, neverHeld); len(rules) != 0 {
		t.Fatalf("a node that is no front got rules %+v", rules)
	}
}

// neverHeld holds no front for its uploads.
func neverHeld(*snapshot, string, *webfarmv1.FrontNode) bool { return false }
