package controllers

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	apiwatch "k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

const (
	scaleNodes       = 500
	scaleFarms       = 50
	scaleAnnotations = 200
	// scaleStep is how far the fake clock moves per round of Lease
	// renewals: well within deadtime, as a keepalive is.
	scaleStep = 250 * time.Millisecond
)

// writeCounter counts the controller's writes to the API server.
type writeCounter struct {
	next   http.RoundTripper
	writes atomic.Int64
}

func (w *writeCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet {
		w.writes.Add(1)
	}
	return w.next.RoundTrip(req)
}

// BenchmarkEnvtestScale runs the controller on a fake clock against a real
// API server with 500 Nodes, 50 WebFarms (10 fronts each) and 50
// FailoverIPs, and reports: the controller's API writes in steady state
// while every agent renews its Lease, its heap and RSS, the time from a
// drain annotation to the FrontNode marked, and the time from an owner's
// fence expiring to the new owner written.
func BenchmarkEnvtestScale(b *testing.B) {
	counter := &writeCounter{}
	h := startHarnessWith(b, logr.Discard(), func(rt http.RoundTripper) http.RoundTripper {
		counter.next = rt
		return counter
	})
	h.ctx = b.Context()
	sc := &scale{h: h, b: b}
	sc.populate()
	// The counter must see the writes of populating, or its zero in steady
	// state would mean nothing.
	b.Logf("controller writes while populating: %d", counter.writes.Load())
	if counter.writes.Load() < scaleNodes {
		b.Fatalf("the write counter saw %d writes while %d FrontNodes were created", counter.writes.Load(), scaleNodes)
	}
	sc.steadyState(counter)
	sc.memory()
	sc.drainLatency()
	sc.failoverLatency()
}

type scale struct {
	h *harness
	b *testing.B
	// silent nodes are left out of the renewal rounds.
	silent map[string]bool
}

func scaleNode(i int) string { return fmt.Sprintf("sc-%03d", i) }

// populate creates the farms, FailoverIPs, Nodes and Leases, and waits
// until every FailoverIP has an owner and every front is Active.
func (s *scale) populate() {
	h := s.h
	start := time.Now()
	ns := "scale"
	h.createNamespace(ns)
	for f := range scaleFarms {
		name := fmt.Sprintf("vip-%02d", f)
		h.createFailoverIP(ns, name, fmt.Sprintf("192.0.2.%d", f+1), "", false)
		h.createFarm(ns, fmt.Sprintf("farm-%02d", f), map[string]string{"farm": strconv.Itoa(f)}, name)
	}
	s.parallel(scaleNodes, func(i int) {
		h.createNode(scaleNode(i), fmt.Sprintf("10.100.%d.%d", i/250, i%250+1), map[string]string{"farm": strconv.Itoa(i % scaleFarms)})
		h.renew(scaleNode(i))
	})
	eventuallyWithin(s.b, "every front Active and every FailoverIP owned", 5*time.Minute, time.Second, func() error {
		var fronts webfarmv1.FrontNodeList
		if err := h.c.List(h.ctx, &fronts); err != nil {
			return err
		}
		active := 0
		for _, f := range fronts.Items {
			if strings.HasPrefix(f.Name, "sc-") && f.Status.Phase == webfarmv1.FrontActive {
				active++
			}
		}
		owned := len(s.owners())
		if active < scaleNodes || owned < scaleFarms {
			return fmt.Errorf("%d fronts Active, %d FailoverIPs owned", active, owned)
		}
		return nil
	})
	s.b.Logf("populated %d nodes, %d farms, %d FailoverIPs in %v", scaleNodes, scaleFarms, scaleFarms, time.Since(start).Round(time.Millisecond))
}

// owners maps each owned FailoverIP to its owner.
func (s *scale) owners() map[string]string {
	var fips webfarmv1.FailoverIPList
	if err := s.h.c.List(s.h.ctx, &fips, client.InNamespace("scale")); err != nil {
		s.b.Fatalf("listing FailoverIPs: %v", err)
	}
	out := map[string]string{}
	for _, f := range fips.Items {
		if f.Status.Owner != "" {
			out[f.Name] = f.Status.Owner
		}
	}
	return out
}

func (s *scale) parallel(n int, do func(i int)) {
	var g errgroup.Group
	g.SetLimit(8)
	for i := range n {
		g.Go(func() error { do(i); return nil })
	}
	_ = g.Wait()
}

// round renews every Lease but the silent ones, then moves the fake clock
// by scaleStep.
func (s *scale) round() {
	s.parallel(scaleNodes, func(i int) {
		if !s.silent[scaleNode(i)] {
			s.h.renew(scaleNode(i))
		}
	})
	s.h.clock.Step(scaleStep)
}

// steadyState counts the controller's writes over rounds of renewals once
// everything has settled: ideally none.
func (s *scale) steadyState(counter *writeCounter) {
	for range 4 {
		s.round()
	}
	const rounds = 20
	before, start := counter.writes.Load(), time.Now()
	for range rounds {
		s.round()
	}
	writes, elapsed := counter.writes.Load()-before, time.Since(start)
	s.b.ReportMetric(float64(writes)/elapsed.Seconds(), "ctrl-writes/s")
	s.b.ReportMetric(float64(writes)/(rounds*scaleStep).Seconds(), "ctrl-writes/simulated-s")
	s.b.ReportMetric(float64(rounds*scaleNodes)/elapsed.Seconds(), "lease-renewals/s")
	s.b.Logf("steady state: %d controller writes over %d rounds of %d renewals (%v real, %v simulated)", writes, rounds, scaleNodes, elapsed.Round(time.Millisecond), rounds*scaleStep)
}

// memory reports the process's heap after a GC and its RSS: the controller
// with its caches, plus the test's own client.
func (s *scale) memory() {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	s.b.ReportMetric(float64(m.HeapInuse)/(1<<20), "heap-MiB")
	if rss, err := vmRSS(); err == nil {
		s.b.ReportMetric(rss/(1<<20), "rss-MiB")
	} else {
		s.b.Logf("reading VmRSS: %v", err)
	}
}

func vmRSS() (float64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/self/status")
}

// frontWatch records when each FrontNode is first seen satisfying a
// condition, from a watch, so that latencies are not bounded by polling.
type frontWatch struct {
	mu   sync.Mutex
	seen map[string]time.Time
	stop func()
}

func (s *scale) watchFronts(cond func(*webfarmv1.FrontNode) bool) *frontWatch {
	wc, err := client.NewWithWatch(s.h.env.Config, client.Options{Scheme: s.h.env.Scheme})
	if err != nil {
		s.b.Fatalf("creating a watching client: %v", err)
	}
	w, err := wc.Watch(s.h.ctx, &webfarmv1.FrontNodeList{})
	if err != nil {
		s.b.Fatalf("watching FrontNodes: %v", err)
	}
	fw := &frontWatch{seen: map[string]time.Time{}, stop: w.Stop}
	go func() {
		for ev := range w.ResultChan() {
			f, ok := ev.Object.(*webfarmv1.FrontNode)
			if !ok || ev.Type == apiwatch.Deleted || !cond(f) {
				continue
			}
			fw.mu.Lock()
			if _, done := fw.seen[f.Name]; !done {
				fw.seen[f.Name] = time.Now()
			}
			fw.mu.Unlock()
		}
	}()
	return fw
}

func (fw *frontWatch) at(name string) (time.Time, bool) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	t, ok := fw.seen[name]
	return t, ok
}

// drainLatency annotates fronts that own no address, one at a time, and
// measures the time until their FrontNode says drainRequested.
func (s *scale) drainLatency() {
	owners := map[string]bool{}
	for _, o := range s.owners() {
		owners[o] = true
	}
	fw := s.watchFronts(func(f *webfarmv1.FrontNode) bool { return f.Spec.DrainRequested })
	defer fw.stop()
	var lat []time.Duration
	for i := 0; len(lat) < scaleAnnotations && i < scaleNodes; i++ {
		node := scaleNode(i)
		if owners[node] {
			continue
		}
		start := time.Now()
		s.h.annotateDrain(node, "true")
		var marked time.Time
		eventually(s.b, "FrontNode "+node+" drainRequested", func() error {
			var ok bool
			if marked, ok = fw.at(node); !ok {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		lat = append(lat, marked.Sub(start))
	}
	slowest := slices.Index(lat, slices.Max(lat))
	slices.Sort(lat)
	s.b.ReportMetric(ms(lat[len(lat)/2]), "drain-p50-ms")
	s.b.ReportMetric(ms(lat[(len(lat)*99+99)/100-1]), "drain-p99-ms")
	s.b.Logf("annotation → drainRequested over %d annotations: min %v, median %v, max %v (annotation #%d)", len(lat), lat[0], lat[len(lat)/2], lat[len(lat)-1], slowest+1)
}

// failoverLatency silences the owner of one FailoverIP and measures the
// real time from the fake clock reaching its fence (deadtime plus guard
// after the controller last saw its Lease renewed) to the new owner
// written. The owner's last renewal was seen in the round before; if the
// controller saw it only after that round's step, the fence comes one step
// later, and the latency is measured from that step.
func (s *scale) failoverLatency() {
	const fip = "vip-07"
	owner := s.owners()[fip]
	s.silent = map[string]bool{owner: true}
	fence := testDeadtime + testGuard
	elapsed := scaleStep
	for ; elapsed < fence-scaleStep; elapsed += scaleStep {
		s.round()
	}
	for ; elapsed <= fence+2*scaleStep; elapsed += scaleStep {
		if now := s.owners()[fip]; now != owner {
			s.b.Fatalf("%s moved from %s to %q %v after its last renewal, before its fence at %v", fip, owner, now, elapsed, fence)
		}
		s.round()
		crossed := time.Now()
		if moved, ok := s.movedWithin(fip, owner, time.Second); ok {
			latency := moved.Sub(crossed)
			s.b.ReportMetric(ms(latency), "fence-to-owner-ms")
			s.b.ReportMetric(ms(fence+latency), "stale-to-owner-ms")
			s.b.Logf("silent owner %s of %s replaced %v after the step to %v since its last renewal (fence: deadtime %v + guard %v)", owner, fip, latency, elapsed+scaleStep, testDeadtime, testGuard)
			return
		}
	}
	s.b.Fatalf("%s still owned by silent %s %v after its last renewal", fip, owner, elapsed)
}

// movedWithin polls until fip's owner is neither owner nor nobody.
func (s *scale) movedWithin(fip, owner string, d time.Duration) (time.Time, bool) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		var f webfarmv1.FailoverIP
		if err := s.h.c.Get(s.h.ctx, client.ObjectKey{Namespace: "scale", Name: fip}, &f); err == nil && f.Status.Owner != owner && f.Status.Owner != "" {
			return time.Now(), true
		}
	}
	return time.Time{}, false
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
