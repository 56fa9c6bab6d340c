package controllers

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

func TestUploadsCondition(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	farm := func(uploads bool) *webfarmv1.WebFarm {
		wf := &webfarmv1.WebFarm{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}
		if uploads {
			wf.Spec.Uploads = &webfarmv1.UploadsSpec{MaxLag: metav1.Duration{Duration: 30 * time.Second},
				Directories: []webfarmv1.UploadDirectory{{Name: "media", Path: "/srv/media"}}}
		}
		return wf
	}
	front := func(name string, phase webfarmv1.FrontPhase, u ...webfarmv1.NodeUploadsStatus) webfarmv1.FrontNode {
		f := webfarmv1.FrontNode{ObjectMeta: metav1.ObjectMeta{Name: name}}
		f.Status.Phase, f.Status.Uploads = phase, u
		return f
	}
	pendingSince := func(ago time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(-ago)} }
	for _, tc := range []struct {
		name        string
		farm        *webfarmv1.WebFarm
		fronts      []webfarmv1.FrontNode
		wantNil     bool
		wantReason  string
		wantMessage string
		wantRecheck time.Duration
	}{
		{name: "no uploads: no condition", farm: farm(false), wantNil: true},
		{
			name: "all caught up, nothing pending",
			farm: farm(true),
			fronts: []webfarmv1.FrontNode{
				front("front1", webfarmv1.FrontActive, webfarmv1.NodeUploadsStatus{Name: "shop/web/media", CaughtUp: true}),
				front("front2", webfarmv1.FrontActive, webfarmv1.NodeUploadsStatus{Name: "shop/web/media", CaughtUp: true}),
			},
			wantReason: webfarmv1.ReasonUploadsInSync,
		},
		{
			name: "pending within the bound: in sync, look again when it would lag",
			farm: farm(true),
			fronts: []webfarmv1.FrontNode{
				front("front1", webfarmv1.FrontActive, webfarmv1.NodeUploadsStatus{Name: "shop/web/media", CaughtUp: true, Pending: 3, OldestPendingTime: pendingSince(10 * time.Second)}),
			},
			wantReason: webfarmv1.ReasonUploadsInSync, wantRecheck: 21 * time.Second,
		},
		{
			name: "a change older than maxLag: lagging, naming the front",
			farm: farm(true),
			fronts: []webfarmv1.FrontNode{
				front("front1", webfarmv1.FrontActive, webfarmv1.NodeUploadsStatus{Name: "shop/web/media", CaughtUp: true, Pending: 1, OldestPendingTime: pendingSince(45 * time.Second)}),
			},
			wantReason: webfarmv1.ReasonUploadsLagging, wantMessage: "front1 media (45s behind)",
		},
		{
			name: "a front catching up",
			farm: farm(true),
			fronts: []webfarmv1.FrontNode{
				front("front3", webfarmv1.FrontActive, webfarmv1.NodeUploadsStatus{Name: "shop/web/media"}),
			},
			wantReason: webfarmv1.ReasonUploadsCatchUp, wantMessage: "front3 media",
		},
		{
			name: "a down front does not count",
			farm: farm(true),
			fronts: []webfarmv1.FrontNode{
				front("front3", webfarmv1.FrontDown, webfarmv1.NodeUploadsStatus{Name: "shop/web/media", OldestPendingTime: pendingSince(time.Hour)}),
			},
			wantReason: webfarmv1.ReasonUploadsInSync,
		},
		{
			name: "a farm whose Secret the agent cannot read",
			farm: farm(true),
			fronts: []webfarmv1.FrontNode{
				front("front1", webfarmv1.FrontActive, webfarmv1.NodeUploadsStatus{Name: "shop/web", CaughtUp: true, LastError: "farm shop/web: uploads not synced: secret not found"}),
			},
			wantReason: webfarmv1.ReasonUploadsSyncError, wantMessage: "secret not found",
		},
		{
			name: "another farm's directories do not count",
			farm: farm(true),
			fronts: []webfarmv1.FrontNode{
				front("front1", webfarmv1.FrontActive, webfarmv1.NodeUploadsStatus{Name: "shop/webshop/media"}),
			},
			wantReason: webfarmv1.ReasonUploadsInSync,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, recheck := uploadsCondition(tc.farm, tc.fronts, now)
			if tc.wantNil {
				if c != nil {
					t.Fatalf("condition %+v, want none", c)
				}
				return
			}
			if c == nil || c.Reason != tc.wantReason || !strings.Contains(c.Message, tc.wantMessage) {
				t.Fatalf("condition %+v, want reason %s with %q", c, tc.wantReason, tc.wantMessage)
			}
			if (c.Status == metav1.ConditionTrue) != (tc.wantReason == webfarmv1.ReasonUploadsInSync) {
				t.Errorf("status %s with reason %s", c.Status, c.Reason)
			}
			if recheck != tc.wantRecheck {
				t.Errorf("recheck %v, want %v", recheck, tc.wantRecheck)
			}
		})
	}
}
