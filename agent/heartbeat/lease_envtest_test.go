package heartbeat

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/webfarm/webfarm/internal/testenv"
)

// TestEnvtestLeaseRenewer runs the renewer against a real API server, with a
// fake clock standing in for hours of keepalive.
func TestEnvtestLeaseRenewer(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	const namespace, interval = "webfarm-system", time.Hour
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := &LeaseRenewer{Client: env.Client, Namespace: namespace, Node: "front1",
		Interval: func() time.Duration { return interval }, Clock: clk}
	key := client.ObjectKey{Namespace: namespace, Name: "webfarm-node-front1"}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	renewedAt := func(at time.Time) *coordinationv1.Lease {
		t.Helper()
		var lease coordinationv1.Lease
		eventually(t, "the Lease is renewed at "+at.String(), func() bool {
			err := env.Client.Get(ctx, key, &lease)
			return err == nil && lease.Spec.RenewTime != nil && lease.Spec.RenewTime.Time.Equal(at)
		})
		// The renewer records a renewal once its request returns, which may
		// be just after the API server shows it.
		eventually(t, "LastRenewal is "+at.String(), func() bool { return r.LastRenewal().Equal(at) })
		if got := r.LastRenewal(); !got.Equal(at) {
			t.Errorf("LastRenewal = %v, want %v", got, at)
		}
		return &lease
	}

	created := renewedAt(clk.Now())
	if s := created.Spec; *s.HolderIdentity != "front1" || *s.LeaseDurationSeconds != int32(4*interval/time.Second) {
		t.Errorf("created Lease spec = holder %s, duration %ds", *s.HolderIdentity, *s.LeaseDurationSeconds)
	}

	clk.Step(interval)
	renewed := renewedAt(clk.Now())
	if renewed.UID != created.UID || renewed.ResourceVersion == created.ResourceVersion {
		t.Errorf("renewal gave uid %s version %s, want the same Lease (uid %s) at a new version (not %s)",
			renewed.UID, renewed.ResourceVersion, created.UID, created.ResourceVersion)
	}

	if err := env.Client.Delete(ctx, renewed); err != nil {
		t.Fatal(err)
	}
	clk.Step(interval)
	recreated := renewedAt(clk.Now())
	if recreated.UID == renewed.UID {
		t.Errorf("the deleted Lease came back with its old uid %s", recreated.UID)
	}

	stop()
	<-done
	testLeaseDelete(t, env, r, key)
	testLeaseTakenBack(t, env, r, key)
}

// testLeaseTakenBack: the node's Lease, left held by another holder, is
// taken back by the next renewal, which counts only as such.
func testLeaseTakenBack(t *testing.T, env *testenv.Env, r *LeaseRenewer, key client.ObjectKey) {
	ctx := context.Background()
	now := r.clock().Now()
	if err := r.renewWithin(ctx, now, time.Minute); err != nil {
		t.Fatalf("renewing a Lease held by another holder: %v", err)
	}
	var lease coordinationv1.Lease
	if err := env.Client.Get(ctx, key, &lease); err != nil {
		t.Fatal(err)
	}
	if holderOf(&lease) != r.Node || !lease.Spec.RenewTime.Time.Equal(now) {
		t.Errorf("after the renewal: held by %s, renewed at %v; want %s at %v", holderOf(&lease), lease.Spec.RenewTime, r.Node, now)
	}
}

func testLeaseDelete(t *testing.T, env *testenv.Env, r *LeaseRenewer, key client.ObjectKey) {
	ctx := context.Background()
	if err := r.Delete(ctx); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := env.Client.Get(ctx, key, &coordinationv1.Lease{}); !apierrors.IsNotFound(err) {
		t.Errorf("Lease after Delete: %v, want not found", err)
	}
	if err := r.Delete(ctx); err != nil {
		t.Errorf("Delete of a missing Lease: %v, want nil", err)
	}
	other := "front2"
	foreign := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &other}}
	if err := env.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx); err == nil {
		t.Errorf("Delete removed a Lease held by %s", other)
	}
	if err := env.Client.Get(ctx, key, &coordinationv1.Lease{}); err != nil {
		t.Errorf("Lease held by %s after a refused Delete: %v", other, err)
	}
}
