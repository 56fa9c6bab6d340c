package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
