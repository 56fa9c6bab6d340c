package heartbeat

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// TestLeaseName pins the name docs/architecture.md gives the Lease, which the
// controller watches.
func TestLeaseName(t *testing.T) {
	if got, want := webfarmv1.NodeLeaseName("front1"), "webfarm-node-front1"; got != want {
		t.Errorf("NodeLeaseName = %q, want %q", got, want)
	}
}

// outage makes every request fail, or hang until its context ends, while on.
type outage struct {
	down     atomic.Bool
	hang     atomic.Bool
	attempts atomic.Int64
}

func (o *outage) client(t *testing.T) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	fail := func(ctx context.Context) error {
		o.attempts.Add(1)
		if !o.down.Load() {
			return nil
		}
		if o.hang.Load() {
			<-ctx.Done()
			return ctx.Err()
		}
		return errors.New("connection refused")
	}
	return interceptor.NewClient(fake.NewClientBuilder().WithScheme(scheme).Build(), interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if err := fail(ctx); err != nil {
				return err
			}
			return c.Get(ctx, key, obj, opts...)
		},
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if err := fail(ctx); err != nil {
				return err
			}
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if err := fail(ctx); err != nil {
				return err
			}
			return c.Update(ctx, obj, opts...)
		},
	})
}

// runRenewer runs r until t ends.
func runRenewer(t *testing.T, r *LeaseRenewer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// TestLeaseRenewerRecoversAtNextInterval: failed and hung attempts are
// retried after RetryAfter, never later, even when the interval is long (a
// quiet front), and renewal resumes at the first retry after the API server
// comes back.
func TestLeaseRenewerRecoversAtNextInterval(t *testing.T) {
	const interval = time.Minute
	retry := RetryAfter(interval)
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var api outage
	r := &LeaseRenewer{Client: api.client(t), Namespace: "webfarm-system", Node: "front1",
		Interval: func() time.Duration { return interval }, Clock: clk}
	runRenewer(t, r)
	eventually(t, "the first renewal", func() bool { return r.LastRenewal().Equal(clk.Now()) })

	api.down.Store(true)
	outageStart := clk.Now()
	n := api.attempts.Load()
	clk.Step(interval)
	eventually(t, "a renewal attempt at the interval", func() bool { return api.attempts.Load() > n })
	for range 3 {
		n := api.attempts.Load()
		eventually(t, "the renewer waits to retry", clk.HasWaiters)
		clk.Step(retry)
		eventually(t, "a retry during the outage", func() bool { return api.attempts.Load() > n })
	}
	api.hang.Store(true)
	eventually(t, "the renewer waits to retry", clk.HasWaiters)
	clk.Step(retry)
	hungAt := clk.Now()
	// The hung attempt ends at AttemptTimeout, by the clock.
	eventually(t, "the hung attempt waits on the clock", clk.HasWaiters)
	clk.Step(AttemptTimeout(interval))
	if !r.LastRenewal().Equal(outageStart) {
		t.Fatalf("LastRenewal = %v during the outage, want %v", r.LastRenewal(), outageStart)
	}

	api.down.Store(false)
	eventually(t, "the renewer waits to retry", clk.HasWaiters)
	clk.Step(retry - AttemptTimeout(interval))
	want := hungAt.Add(retry)
	eventually(t, "a renewal one retry after the hung attempt", func() bool { return r.LastRenewal().Equal(want) })
}

// hourlyRenewer runs a renewer whose interval, an hour, the test may
// change, and returns it once it made its first renewal.
func hourlyRenewer(t *testing.T) (*LeaseRenewer, *clocktesting.FakeClock, *atomic.Int64) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	interval := &atomic.Int64{}
	interval.Store(int64(time.Hour))
	var api outage
	r := &LeaseRenewer{Client: api.client(t), Namespace: "webfarm-system", Node: "front1",
		Interval: func() time.Duration { return time.Duration(interval.Load()) }, Clock: clk}
	runRenewer(t, r)
	start := clk.Now()
	eventually(t, "the first renewal", func() bool { return r.LastRenewal().Equal(start) })
	return r, clk, interval
}

// TestLeaseRenewerFollowsInterval: a shorter interval takes effect within
// the poll, without sleeping out the longer one.
func TestLeaseRenewerFollowsInterval(t *testing.T) {
	r, clk, interval := hourlyRenewer(t)
	start := clk.Now()

	interval.Store(int64(500 * time.Millisecond))
	// Up to the new interval and no further: from then on the renewer may
	// be in an attempt, whose own timeout timer would let a further step
	// cut it (and the retry come a RetryAfter later).
	for clk.Since(start) < 500*time.Millisecond {
		eventually(t, "the renewer waits on the clock", clk.HasWaiters)
		clk.Step(intervalPoll)
	}
	eventually(t, "a renewal at the new interval", func() bool { return r.LastRenewal().After(start) })
	if got := r.LastRenewal().Sub(start); got > 500*time.Millisecond+intervalPoll {
		t.Errorf("renewed %v after the first renewal, want within %v", got, 500*time.Millisecond+intervalPoll)
	}
}

// TestLeaseRenewerWakeAndRenewNow: Wake makes a shorter interval count at
// once, without waiting for the poll; RenewNow renews at once whatever the
// interval.
func TestLeaseRenewerWakeAndRenewNow(t *testing.T) {
	r, clk, interval := hourlyRenewer(t)

	eventually(t, "the renewer waits", clk.HasWaiters)
	clk.Step(time.Second)
	r.RenewNow()
	now := clk.Now()
	eventually(t, "a renewal at once, an hour early", func() bool { return r.LastRenewal().Equal(now) })

	eventually(t, "the renewer waits", clk.HasWaiters)
	clk.Step(time.Second)
	interval.Store(int64(500 * time.Millisecond))
	r.Wake()
	now = clk.Now()
	eventually(t, "a renewal at once, the shorter interval gone by", func() bool { return r.LastRenewal().Equal(now) })
}

func TestLeaseRenewerStamp(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, tt := range []struct {
		name     string
		interval time.Duration
		duration time.Duration
		want     int32
	}{
		{"four intervals", 2 * time.Second, 0, 8},
		{"at least a second", 100 * time.Millisecond, 0, 1},
		{"deadtime rounded up", time.Second, 2500 * time.Millisecond, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &LeaseRenewer{Node: "front1", Clock: clk,
				Interval: func() time.Duration { return tt.interval },
				Duration: func() time.Duration { return tt.duration }}
			var lease coordinationv1.Lease
			r.stamp(&lease, clk.Now())
			s := lease.Spec
			if *s.HolderIdentity != "front1" || !s.RenewTime.Time.Equal(clk.Now()) || !s.AcquireTime.Time.Equal(clk.Now()) {
				t.Errorf("spec = %+v, want holder front1 renewed and acquired now", s)
			}
			if *s.LeaseDurationSeconds != tt.want {
				t.Errorf("leaseDurationSeconds = %d, want %d", *s.LeaseDurationSeconds, tt.want)
			}
		})
	}
}

// TestLeaseRenewerCountsOnlyItsOwnRenewals (issue 9, finding 7): a Lease that
// names another holder is taken back and then counts; a renewal that the API
// server stores under another holder is no proof of life, since the
// controller does not count it either.
func TestLeaseRenewerCountsOnlyItsOwnRenewals(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	other := "front2"
	foreign := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "webfarm-system", Name: webfarmv1.NodeLeaseName("front1")},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &other},
	}
	var rewrite atomic.Bool
	api := interceptor.NewClient(fake.NewClientBuilder().WithScheme(scheme).WithObjects(foreign).Build(), interceptor.Funcs{
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if rewrite.Load() {
				obj.(*coordinationv1.Lease).Spec.HolderIdentity = &other
			}
			return c.Update(ctx, obj, opts...)
		},
	})
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := &LeaseRenewer{Client: api, Namespace: "webfarm-system", Node: "front1",
		Interval: func() time.Duration { return time.Minute }, Clock: clk}
	ctx := t.Context()

	if err := r.renewWithin(ctx, clk.Now(), time.Second); err != nil {
		t.Fatalf("taking back a Lease held by %s: %v", other, err)
	}
	var lease coordinationv1.Lease
	if err := api.Get(ctx, client.ObjectKeyFromObject(foreign), &lease); err != nil || holderOf(&lease) != "front1" {
		t.Fatalf("after the renewal the Lease is held by %s (%v), want front1", holderOf(&lease), err)
	}

	rewrite.Store(true)
	clk.Step(time.Minute)
	if err := r.renewWithin(ctx, clk.Now(), time.Second); err == nil {
		t.Errorf("a renewal stored under holder %s counted as this node's", other)
	}
}
