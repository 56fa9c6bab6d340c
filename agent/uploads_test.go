package agent

import (
	"testing"

	"github.com/webfarm/webfarm/agent/uploads"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// TestUploadsHeld: a front whose declared directories have not caught up
// stays drained on every front's HAProxy, but the drain trick never takes
// the last caught-up front's company away: without one, nobody is held.
func TestUploadsHeld(t *testing.T) {
	withUploads := func() *webfarmv1.WebFarm {
		wf := farm("shop", "web", 5080, 5081)
		wf.Spec.Uploads = &webfarmv1.UploadsSpec{Directories: []webfarmv1.UploadDirectory{{Name: "media", Path: "/srv/media"}}}
		return wf
	}
	uploaded := func(f *webfarmv1.FrontNode, caughtUp bool) *webfarmv1.FrontNode {
		f.Status.Uploads = []webfarmv1.NodeUploadsStatus{{Name: "shop/web/media", CaughtUp: caughtUp}}
		return f
	}
	down := func(f *webfarmv1.FrontNode) *webfarmv1.FrontNode { f.Status.Phase = webfarmv1.FrontDown; return f }
	for _, tc := range []struct {
		name   string
		farm   *webfarmv1.WebFarm
		fronts []*webfarmv1.FrontNode
		want   map[string]bool
	}{
		{
			name: "no uploads declared: nobody held",
			farm: farm("shop", "web", 5080, 5081),
			fronts: []*webfarmv1.FrontNode{front("front1", "10.0.0.1", false, "shop/web"),
				uploaded(front("front2", "10.0.0.2", false, "shop/web"), false)},
			want: map[string]bool{"front1": false, "front2": false},
		},
		{
			name: "a front behind is held while another is caught up",
			farm: withUploads(),
			fronts: []*webfarmv1.FrontNode{front("front1", "10.0.0.1", false, "shop/web"),
				uploaded(front("front2", "10.0.0.2", false, "shop/web"), false),
				uploaded(front("front3", "10.0.0.3", false, "shop/web"), true)},
			want: map[string]bool{"front1": false, "front2": true, "front3": false},
		},
		{
			name: "a front that reports nothing yet is behind",
			farm: withUploads(),
			fronts: []*webfarmv1.FrontNode{front("front1", "10.0.0.1", false, "shop/web"),
				front("front2", "10.0.0.2", false, "shop/web")},
			want: map[string]bool{"front1": false, "front2": true},
		},
		{
			name: "the only caught-up front is draining: nobody held",
			farm: withUploads(),
			fronts: []*webfarmv1.FrontNode{uploaded(front("front2", "10.0.0.2", false, "shop/web"), false),
				uploaded(front("front3", "10.0.0.3", true, "shop/web"), true)},
			want: map[string]bool{"front2": false},
		},
		{
			name: "the only caught-up front is down: nobody held",
			farm: withUploads(),
			fronts: []*webfarmv1.FrontNode{uploaded(front("front2", "10.0.0.2", false, "shop/web"), false),
				down(uploaded(front("front3", "10.0.0.3", false, "shop/web"), true))},
			want: map[string]bool{"front2": false},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// front1 is this node: its own Syncers (none here) say it is
			// caught up, whatever its report says.
			snap := testSnapshot("front1", tc.fronts, tc.farm)
			a := &Agent{uploads: &uploads.Manager{}}
			for name, want := range tc.want {
				if got := a.uploadsHeld(snap, "shop/web", snap.fronts[name]); got != want {
					t.Errorf("%s held = %v, want %v", name, got, want)
				}
			}
		})
	}
}
