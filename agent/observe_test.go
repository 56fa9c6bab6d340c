package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/webfarm/webfarm/agent/heartbeat"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/metrics"
)

func testFailoverIP(owner string, epoch int64) *webfarmv1.FailoverIP {
	return &webfarmv1.FailoverIP{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "www"},
		Spec:       webfarmv1.FailoverIPSpec{Address: "192.0.2.80"},
		Status:     webfarmv1.FailoverIPStatus{Owner: owner, Epoch: epoch},
	}
}

func newTestObserver(t *testing.T, clk *clocktesting.FakeClock) (*observer, *events.FakeRecorder) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := webfarmv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cache := fake.NewClientBuilder().WithScheme(scheme).WithObjects(testFailoverIP("front1", 3)).Build()
	rec := events.NewFakeRecorder(10)
	return newObserver("front1", clk, cache, rec), rec
}

func TestObserverReportedTransitions(t *testing.T) {
	st := func(state webfarmv1.VIPState, epoch int64) []webfarmv1.NodeFailoverIPStatus {
		return []webfarmv1.NodeFailoverIPStatus{{Name: "shop/www", Epoch: epoch, State: state, Message: "why"}}
	}
	cases := []struct {
		name          string
		before, after []webfarmv1.NodeFailoverIPStatus
		event         string // "" when none
	}{
		{"take-over", st(webfarmv1.VIPWaiting, 3), st(webfarmv1.VIPHolding, 3), "Normal TookOver Holding at epoch 3 on front1: why"},
		{"first report holding", nil, st(webfarmv1.VIPHolding, 3), "Normal TookOver"},
		{"still holding at a renewed epoch", st(webfarmv1.VIPHolding, 3), st(webfarmv1.VIPHolding, 4), ""},
		{"release", st(webfarmv1.VIPHolding, 3), st(webfarmv1.VIPReleased, 3), "Normal Released"},
		{"fence", st(webfarmv1.VIPHolding, 3), st(webfarmv1.VIPFenced, 3), "Warning Fenced Fenced at epoch 3 on front1: why"},
		{"owner unheard", st(webfarmv1.VIPReleased, 3), st(webfarmv1.VIPOwnerUnheard, 3), "Warning OwnerUnheard OwnerUnheard at epoch 3 on front1: why"},
		{"waiting", nil, st(webfarmv1.VIPWaiting, 3), ""},
		{"gone from the report", st(webfarmv1.VIPHolding, 3), nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, rec := newTestObserver(t, clocktesting.NewFakeClock(time.Now()))
			var state string
			if len(tc.after) > 0 {
				state = string(tc.after[0].State)
			}
			counter := metrics.FailoverTransitions.WithLabelValues("shop", "www", state)
			before := testutil.ToFloat64(counter)
			o.reported(tc.before, tc.after)
			counted := testutil.ToFloat64(counter) - before
			select {
			case e := <-rec.Events:
				if tc.event == "" || !strings.HasPrefix(e, tc.event) {
					t.Errorf("event %q, want %q", e, tc.event)
				}
				if counted != 1 {
					t.Errorf("counted %v transitions, want 1", counted)
				}
			default:
				if tc.event != "" {
					t.Errorf("no event, want %q", tc.event)
				}
				if state != "" && counted != 0 {
					t.Errorf("counted %v transitions, want none", counted)
				}
			}
		})
	}
}

func TestObserverTakeoverWait(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	o, _ := newTestObserver(t, clk)
	ip := netip.MustParseAddr("192.0.2.80")
	count, sum := histogram(t, metrics.TakeoverWait)

	o.failoverIPSeen(testFailoverIP("front1", 3))
	clk.Step(1500 * time.Millisecond)
	o.failoverIPSeen(testFailoverIP("front1", 3)) // the same epoch seen again
	o.announced(ip, nil)
	o.announced(ip, nil) // a repeat of the same take-over
	c, s := histogram(t, metrics.TakeoverWait)
	if c-count != 1 || s-sum != 1.5 {
		t.Fatalf("observed %d take-overs of %vs in all, want one of 1.5s", c-count, s-sum)
	}

	o.failoverIPSeen(testFailoverIP("front2", 4))
	o.announced(ip, nil)
	if c2, _ := histogram(t, metrics.TakeoverWait); c2 != c {
		t.Fatal("observed an announcement of an address this node does not own")
	}
	failed := testutil.ToFloat64(metrics.Announcements.WithLabelValues("ipv4", "failed"))
	stopped := testutil.ToFloat64(metrics.Announcements.WithLabelValues("ipv4", "stopped"))
	o.announced(ip, errors.New("no raw socket"))
	o.announced(ip, fmt.Errorf("announcing: %w", context.Canceled))
	if got := testutil.ToFloat64(metrics.Announcements.WithLabelValues("ipv4", "failed")); got != failed+1 {
		t.Fatalf("failed announcements %v, want %v", got, failed+1)
	}
	if got := testutil.ToFloat64(metrics.Announcements.WithLabelValues("ipv4", "stopped")); got != stopped+1 {
		t.Fatalf("stopped announcements %v, want %v", got, stopped+1)
	}
}

func histogram(t *testing.T, h prometheus.Histogram) (uint64, float64) {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

func TestObserverWarnsOncePerProblem(t *testing.T) {
	o, rec := newTestObserver(t, clocktesting.NewFakeClock(time.Now()))
	front := &webfarmv1.FrontNode{ObjectMeta: metav1.ObjectMeta{Name: "front1"}}
	// Before the agent knows its FrontNode nothing is recorded, nor
	// remembered as recorded.
	o.warn(nil, EventConfigurationRefused, "refused: a")
	for _, note := range []string{"refused: a", "refused: a", "refused: b"} {
		o.warn(front, EventConfigurationRefused, note)
	}
	o.clear(EventConfigurationRefused)
	o.warn(front, EventConfigurationRefused, "refused: b")
	var got []string
	for len(rec.Events) > 0 {
		got = append(got, <-rec.Events)
	}
	want := []string{"refused: a", "refused: b", "refused: b"}
	if len(got) != len(want) {
		t.Fatalf("events %q, want notes %q", got, want)
	}
	for i := range want {
		if !strings.HasSuffix(got[i], want[i]) {
			t.Errorf("event %d = %q, want note %q", i, got[i], want[i])
		}
	}
}

func TestPeerCollector(t *testing.T) {
	c := newPeerCollector(func() heartbeat.Stats {
		return heartbeat.Stats{Sent: 9, Accepted: 7, Unauthenticated: 2, Replayed: 1, UnknownSender: 4, IgnoredClaims: 5, OldVersion: 3, BadSignature: 6}
	})
	want := `
# HELP webfarm_peer_datagrams_rejected_total Peer datagrams refused, by reason: bad_mac, version (another release's wire format), malformed, unknown_sender, wrong_source, no_sender_key (the sender publishes no key), bad_signature (not signed by the sender's own key), replayed, challenged (unproven sender, asked to resync), no_key.
# TYPE webfarm_peer_datagrams_rejected_total counter
webfarm_peer_datagrams_rejected_total{reason="bad_mac"} 2
webfarm_peer_datagrams_rejected_total{reason="bad_signature"} 6
webfarm_peer_datagrams_rejected_total{reason="challenged"} 0
webfarm_peer_datagrams_rejected_total{reason="malformed"} 0
webfarm_peer_datagrams_rejected_total{reason="no_key"} 0
webfarm_peer_datagrams_rejected_total{reason="no_sender_key"} 0
webfarm_peer_datagrams_rejected_total{reason="replayed"} 1
webfarm_peer_datagrams_rejected_total{reason="unknown_sender"} 4
webfarm_peer_datagrams_rejected_total{reason="version"} 3
webfarm_peer_datagrams_rejected_total{reason="wrong_source"} 0
# HELP webfarm_peer_datagrams_sent_total Peer datagrams this node sent: heartbeats, challenges and their answers.
# TYPE webfarm_peer_datagrams_sent_total counter
webfarm_peer_datagrams_sent_total 9
# HELP webfarm_peer_heartbeats_accepted_total Peer heartbeats authenticated, from a member at its address, and new (not a replay).
# TYPE webfarm_peer_heartbeats_accepted_total counter
webfarm_peer_heartbeats_accepted_total 7
# HELP webfarm_peer_claims_ignored_total Claims about a failover IP this node does not know.
# TYPE webfarm_peer_claims_ignored_total counter
webfarm_peer_claims_ignored_total 5
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"webfarm_peer_datagrams_rejected_total", "webfarm_peer_datagrams_sent_total",
		"webfarm_peer_heartbeats_accepted_total", "webfarm_peer_claims_ignored_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c); n != 14 {
		t.Fatalf("collected %d series, want 14", n)
	}
}

func TestTimedTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			http.Error(w, "no", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	c := &http.Client{Transport: timedTransport{next: http.DefaultTransport}}
	count := func(result string) uint64 {
		var m dto.Metric
		if err := metrics.APIRequestDuration.WithLabelValues("GET", result).(prometheus.Histogram).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetHistogram().GetSampleCount()
	}
	ok, fail, broken := count("2xx"), count("5xx"), count("error")
	for _, url := range []string{srv.URL + "/", srv.URL + "/fail", "http://127.0.0.1:1/"} {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	if count("2xx") != ok+1 || count("5xx") != fail+1 || count("error") != broken+1 {
		t.Fatalf("observed 2xx %d, 5xx %d, error %d more; want one each", count("2xx")-ok, count("5xx")-fail, count("error")-broken)
	}
}

// A fence counts once, by the cause the node reports, and a cause the
// metric does not know counts as Unknown, so the label stays bounded.
func TestObserverFencesByCause(t *testing.T) {
	fenced := func(reason string) []webfarmv1.NodeFailoverIPStatus {
		return []webfarmv1.NodeFailoverIPStatus{{Name: "shop/www", Epoch: 3, State: webfarmv1.VIPFenced, Reason: reason}}
	}
	holding := []webfarmv1.NodeFailoverIPStatus{{Name: "shop/www", Epoch: 3, State: webfarmv1.VIPHolding}}
	for _, tc := range []struct {
		name          string
		before, after []webfarmv1.NodeFailoverIPStatus
		cause         string
		counted       float64
	}{
		{"proof expired", holding, fenced("ProofExpired"), "ProofExpired", 1},
		{"newer view", holding, fenced("NewerView"), "NewerView", 1},
		{"superseded", holding, fenced("Superseded"), "Superseded", 1},
		{"status rolled back", holding, fenced("StatusRolledBack"), "StatusRolledBack", 1},
		{"invalid address", nil, fenced("InvalidAddress"), "InvalidAddress", 1},
		{"saved by an older agent", nil, fenced("Unrecorded"), "Unrecorded", 1},
		{"no cause", holding, fenced(""), "Unknown", 1},
		{"a cause the metric does not know", holding, fenced("Cosmic rays"), "Unknown", 1},
		{"still fenced", fenced("ProofExpired"), fenced("ProofExpired"), "ProofExpired", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, _ := newTestObserver(t, clocktesting.NewFakeClock(time.Now()))
			counter := metrics.Fences.WithLabelValues("shop", "www", tc.cause)
			before := testutil.ToFloat64(counter)
			o.reported(tc.before, tc.after)
			if got := testutil.ToFloat64(counter) - before; got != tc.counted {
				t.Errorf("counted %v fences with cause %s, want %v", got, tc.cause, tc.counted)
			}
		})
	}
}
