package agent

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/webfarm/webfarm/agent/heartbeat"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// blackHole is an API server on loopback whose packets go nowhere: it
// accepts connections and never answers, as one behind a firewall that drops
// packets looks to a client that got through the handshake. It counts the
// connections, one per attempt.
type blackHole struct {
	ln       net.Listener
	accepted atomic.Int64
}

func newBlackHole(t *testing.T) *blackHole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{ln: ln}
	var wg sync.WaitGroup
	var conns []net.Conn
	var mu sync.Mutex
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	return b
}

// client is the agent's direct client, pointed at the black hole.
func (b *blackHole) client(t *testing.T) *Agent {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := webfarmv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cfg := &rest.Config{Host: "https://" + b.ln.Addr().String(), TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	api, err := NewAPIClient(cfg, scheme)
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{clock: clock.RealClock{}, api: api, reporter: &reporter{client: api, node: "front1"}}
	a.failover = newFailover(a, filepath.Join(t.TempDir(), "ownership.json"))
	return a
}

// TestLeaseRenewalAgainstABlackHole (issue 9, finding 1): a renewal sent to an
// API server that never answers is given up at its deadline, four fifths of
// the keepalive, and the next one starts at the next keepalive — rather than
// one request hanging for the tens of seconds of TCP's own timeouts, while
// the proof of liveness runs out unnoticed. No renewal counts meanwhile.
func TestLeaseRenewalAgainstABlackHole(t *testing.T) {
	const keepalive = 200 * time.Millisecond
	hole := newBlackHole(t)
	a := hole.client(t)
	r := &heartbeat.LeaseRenewer{Client: a.api, Namespace: "webfarm-system", Node: "front1",
		Interval: func() time.Duration { return keepalive }}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	start := time.Now()
	const attempts = 5
	// apiTimeout is what the backstop alone would give a single attempt.
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, apiTimeout, true, func(context.Context) (bool, error) {
		return hole.accepted.Load() >= attempts, nil
	})
	if err != nil {
		t.Fatalf("%d renewal attempts in %v: each hangs instead of ending at its deadline", hole.accepted.Load(), apiTimeout)
	}
	t.Logf("%d renewal attempts against the black hole in %v (keepalive %v)", attempts, time.Since(start).Round(time.Millisecond), keepalive)
	if last := r.LastRenewal(); !last.IsZero() {
		t.Errorf("LastRenewal = %v, want none: nothing was renewed", last)
	}
}

// TestPublishAgainstABlackHole: a status report sent to an API server that
// never answers holds the failover loop for one keepalive at most.
func TestPublishAgainstABlackHole(t *testing.T) {
	hole := newBlackHole(t)
	a := hole.client(t)
	a.reporter.update(func(r *report) { r.ShuttingDown = true })
	start := time.Now()
	a.publish(t.Context())
	took := time.Since(start)
	t.Logf("publish gave up after %v (keepalive %v)", took.Round(time.Millisecond), a.failover.keepalive())
	if took >= apiTimeout {
		t.Errorf("publish took %v, no less than the backstop %v: it has no deadline of its own", took, apiTimeout)
	}
	if hole.accepted.Load() == 0 {
		t.Errorf("publish never reached the black hole")
	}
}
