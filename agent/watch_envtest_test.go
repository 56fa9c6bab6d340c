package agent

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/testenv"
)

// TestEnvtestWatchCacheWakesOnEveryKind: once waitForCache returns, the
// cache has every kind the agent reads, and a change of any of them —
// a Site's included, which the node loop serves — wakes the agent.
func TestEnvtestWatchCacheWakesOnEveryKind(t *testing.T) {
	env := testenv.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := cache.New(env.Config, cache.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Start(ctx) }()
	a := &Agent{clock: clock.RealClock{}, cache: c, informers: c, obs: newObserver("front1", clock.RealClock{}, c, nil),
		wake: make(chan struct{}, 1), identityWake: make(chan struct{}, 1)}
	synced, ok := a.watchCache(ctx)
	if !ok || !a.waitForCache(ctx, synced) {
		t.Fatal("the cache did not sync")
	}
	if _, err := readSnapshot(ctx, a.cache, "front1"); err != nil {
		t.Fatalf("reading the first view: %v", err)
	}
	drain := func() {
		select {
		case <-a.wake:
		default:
		}
	}
	for _, obj := range []struct {
		name   string
		create func() error
	}{
		{"Site", func() error {
			return env.Client.Create(ctx, &webfarmv1.Site{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "www"},
				Spec: webfarmv1.SiteSpec{Hostnames: []webfarmv1.Hostname{"www.example.com"}, WebFarmRef: webfarmv1.LocalObjectReference{Name: "shop"}}})
		}},
		{"FrontNode", func() error {
			return env.Client.Create(ctx, &webfarmv1.FrontNode{ObjectMeta: metav1.ObjectMeta{Name: "front1"},
				Spec: webfarmv1.FrontNodeSpec{NodeName: "front1", Address: "192.0.2.1", Cookie: "front1"}})
		}},
	} {
		drain()
		if err := obj.create(); err != nil {
			t.Fatalf("creating a %s: %v", obj.name, err)
		}
		select {
		case <-a.wake:
		case <-time.After(10 * time.Second):
			t.Errorf("a new %s did not wake the agent", obj.name)
		}
	}
}
