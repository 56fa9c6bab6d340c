package agent

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// A standalone FailoverIP's peers are the nodes whose FrontNode lists it,
// whatever the farms say: a farm that lists it adds none.
func TestStandalonePeers(t *testing.T) {
	db := &webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "primary"}}
	db.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"role": "db"}}
	web := &webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "web"}}
	wf := farm("db", "farm", 80, 8080)
	wf.Spec.FailoverIPs = []string{"primary", "web"}
	back1, back2 := front("back1", "10.0.0.21", false), front("back2", "10.0.0.22", false)
	back1.Spec.FailoverIPs = []string{"db/primary"}
	back2.Spec.FailoverIPs = []string{"db/primary"}
	s := testSnapshot("back1", []*webfarmv1.FrontNode{back1, back2, front("front1", "10.0.0.11", false, "db/farm")}, wf)

	if got := s.peersOf(db); !slices.Equal(got, []string{"back1", "back2"}) {
		t.Errorf("peersOf(standalone) = %v, want [back1 back2]", got)
	}
	if got := s.peersOf(web); !slices.Equal(got, []string{"front1"}) {
		t.Errorf("peersOf(farm's) = %v, want [front1]", got)
	}
	if !s.frontOfFarmListing(db) {
		t.Error("back1 is selected by db/primary, yet not concerned")
	}
	if s.frontOfFarmListing(web) {
		t.Error("back1 is no front of the farm, yet concerned by its FailoverIP")
	}
	s.self = s.fronts["front1"]
	if s.frontOfFarmListing(db) {
		t.Error("front1's farm lists db/primary, which has a nodeSelector: the farm must add no candidate")
	}
}
