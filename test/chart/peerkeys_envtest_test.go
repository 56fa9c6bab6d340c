package chart

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// publishPeerKeys writes a FrontNode's status.peerKeys as the agent does: a
// merge patch of its own keys on the status subresource.
func publishPeerKeys(ctx context.Context, c client.Client, node string, keys ...string) error {
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"peerKeys": keys}})
	if err != nil {
		return err
	}
	return c.Status().Patch(ctx, &webfarmv1.FrontNode{ObjectMeta: metav1.ObjectMeta{Name: node}}, client.RawPatch(types.MergePatchType, patch))
}

func newPeerKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(pub)
}

// TestEnvtestPeerKeysBoundToTheirNode: a front's peer keys can be written
// by its own agent only, so that a published key speaks for its node; and
// the CRD takes only what can be an Ed25519 key, two at most.
func TestEnvtestPeerKeysBoundToTheirNode(t *testing.T) {
	cfg, admin := controlPlane(t)
	installForRBAC(t, admin)
	front1 := impersonate(t, cfg, "webfarm-agent", "front1")
	waitForPolicy(t, front1)
	front2 := impersonate(t, cfg, "webfarm-agent", "front2")
	ctx := context.Background()

	key2 := newPeerKey(t)
	if err := publishPeerKeys(ctx, front2, "front2", key2); err != nil {
		t.Fatalf("front2's agent publishing its own key: %v", err)
	}
	forged := newPeerKey(t)
	for _, keys := range [][]string{{forged}, {key2, forged}, nil} {
		if got, _ := judge(publishPeerKeys(ctx, front1, "front2", keys...)); got != deniedByPolicy {
			t.Errorf("front1's agent writing front2's peer keys %v: %v, want %v", keys, got, deniedByPolicy)
		}
	}
	var fn webfarmv1.FrontNode
	if err := admin.Get(ctx, client.ObjectKey{Name: "front2"}, &fn); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fn.Status.PeerKeys, []string{key2}) {
		t.Errorf("front2 publishes %v, want its own key %v only", fn.Status.PeerKeys, key2)
	}

	key1, next1 := newPeerKey(t), newPeerKey(t)
	if err := publishPeerKeys(ctx, front1, "front1", key1, next1); err != nil {
		t.Errorf("front1's agent publishing its key and the next one: %v", err)
	}
	for name, keys := range map[string][]string{
		"three keys":         {key1, next1, newPeerKey(t)},
		"not base64":         {strings.Repeat("!", 43) + "="},
		"a key of 31 bytes":  {base64.StdEncoding.EncodeToString(make([]byte, 31))},
		"unpadded base64url": {strings.TrimSuffix(strings.NewReplacer("+", "-", "/", "_").Replace(key1), "=")},
	} {
		if err := publishPeerKeys(ctx, front1, "front1", keys...); err == nil || !strings.Contains(err.Error(), "Invalid") {
			t.Errorf("publishing %s: %v, want the CRD to refuse it", name, err)
		}
	}
}
