package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

func TestReleasedEpoch(t *testing.T) {
	fip := &webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "vip"}}
	for _, tt := range []struct {
		state webfarmv1.VIPState
		want  int64
	}{
		{webfarmv1.VIPReleased, 7},
		{webfarmv1.VIPFenced, 7}, // it removed the address too: a fenced owner must not stay owner
		{webfarmv1.VIPHolding, 0},
		{webfarmv1.VIPWaiting, 0},
	} {
		front := &webfarmv1.FrontNode{Status: webfarmv1.FrontNodeStatus{FailoverIPs: []webfarmv1.NodeFailoverIPStatus{
			{Name: "shop/other", Epoch: 9, State: webfarmv1.VIPReleased},
			{Name: "shop/vip", Epoch: 7, State: tt.state},
		}}}
		if got := releasedEpoch(front, fip); got != tt.want {
			t.Errorf("%s at epoch 7: releasedEpoch = %d, want %d", tt.state, got, tt.want)
		}
	}
}

// TestReportsAboutAnotherObject: a FailoverIP recreated under the same name
// starts its epochs again; what an agent reported of the old one (another
// UID) must not count as a release of the new one.
func TestReportsAboutAnotherObject(t *testing.T) {
	fip := &webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "vip", UID: "new"}}
	for _, tt := range []struct {
		uid                 types.UID
		wantElect, wantGone int64
	}{
		{"new", 3, 3},
		{"old", 0, 0},
		{"", 3, 0}, // an agent older than UIDs: the election trusts it as before, a withdrawal does not
	} {
		front := &webfarmv1.FrontNode{Status: webfarmv1.FrontNodeStatus{FailoverIPs: []webfarmv1.NodeFailoverIPStatus{
			{Name: "shop/vip", UID: tt.uid, Epoch: 3, State: webfarmv1.VIPReleased},
		}}}
		if got := releasedEpoch(front, fip); got != tt.wantElect {
			t.Errorf("report for UID %q: releasedEpoch = %d, want %d", tt.uid, got, tt.wantElect)
		}
		if got := removedEpoch(front, fip); got != tt.wantGone {
			t.Errorf("report for UID %q: removedEpoch = %d, want %d", tt.uid, got, tt.wantGone)
		}
	}
	if got := removedEpoch(nil, fip); got != 0 {
		t.Errorf("no FrontNode: removedEpoch = %d", got)
	}
}
