package agent

import (
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/webfarm/webfarm/agent/ownership"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

func TestAcknowledgeWithdrawals(t *testing.T) {
	fip := func(name string, uid types.UID, st webfarmv1.FailoverIPStatus) *webfarmv1.FailoverIP {
		return &webfarmv1.FailoverIP{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: uid},
			Spec:       webfarmv1.FailoverIPSpec{Address: "192.0.2.1"},
			Status:     st,
		}
	}
	for _, tc := range []struct {
		name    string
		status  webfarmv1.FailoverIPStatus
		holding bool
		decided []webfarmv1.NodeFailoverIPStatus
		want    *webfarmv1.NodeFailoverIPStatus
	}{
		{name: "taken away from us, address gone",
			status: webfarmv1.FailoverIPStatus{Epoch: 4, PreviousOwner: "n1"},
			want:   &webfarmv1.NodeFailoverIPStatus{Name: "ns/a", UID: "uid-a", Epoch: 4, State: webfarmv1.VIPReleased}},
		{name: "taken away, but the release failed",
			status: webfarmv1.FailoverIPStatus{Epoch: 4, PreviousOwner: "n1"}, holding: true},
		{name: "taken away from another node",
			status: webfarmv1.FailoverIPStatus{Epoch: 4, PreviousOwner: "n2"}},
		{name: "already acknowledged",
			status: webfarmv1.FailoverIPStatus{Epoch: 4, PreviousOwner: "n1", PreviousOwnerReleased: true}},
		{name: "handed to a new owner",
			status: webfarmv1.FailoverIPStatus{Owner: "n2", Epoch: 4, PreviousOwner: "n1"}},
		{name: "decided for: only named",
			status:  webfarmv1.FailoverIPStatus{Owner: "n1", Epoch: 2},
			decided: []webfarmv1.NodeFailoverIPStatus{{Name: "ns/a", Epoch: 2, State: webfarmv1.VIPHolding}},
			want:    &webfarmv1.NodeFailoverIPStatus{Name: "ns/a", UID: "uid-a", Epoch: 2, State: webfarmv1.VIPHolding}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &failover{memory: &memoryFile{path: filepath.Join(t.TempDir(), "ownership.json")}}
			if tc.holding {
				must(t, f.memory.set("ns/a", ownership.Memory{Holding: true, HeldEpoch: 3}))
			}
			snap := &snapshot{node: "n1", failoverIPs: map[string]*webfarmv1.FailoverIP{"ns/a": fip("a", "uid-a", tc.status)}}
			got := f.acknowledge(snap, tc.decided)
			switch {
			case tc.want == nil && len(got) != 0:
				t.Errorf("reports %+v, want none", got)
			case tc.want != nil && (len(got) != 1 || got[0].Name != tc.want.Name || got[0].UID != tc.want.UID ||
				got[0].Epoch != tc.want.Epoch || got[0].State != tc.want.State):
				t.Errorf("reports %+v, want %+v", got, *tc.want)
			}
		})
	}
}
