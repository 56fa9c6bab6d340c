package testbed

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// Sample is one request of a Load.
type Sample struct {
	Start time.Time
	// Latency is how long the answer (or the failure) took.
	Latency time.Duration
	// Front answered it; empty when it failed or HAProxy answered itself.
	Front string
	// Status is the HTTP status, 0 when the request failed.
	Status int
	Err    string
}

// OK reports whether a web server answered with 200.
func (s Sample) OK() bool { return s.Status == http.StatusOK && s.Front != "" }

// Load sends requests to a URL at a steady rate from the client namespace,
// each on a new connection (a new session: balanced and failed over on its
// own), and records every one. Requests do not wait for each other, so a
// hanging request does not slow the rate down.
type Load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	samples []Sample
}

// LoadOptions shape a Load.
type LoadOptions struct {
	URL string
	// Rate is requests per second. Default 50.
	Rate int
	// Timeout bounds each request. Default 1s: a request lost to a moving
	// VIP counts as failed rather than stretching the gap.
	Timeout time.Duration
	// Client sends the requests; default a new client without cookies.
	Client *http.Client
}

// StartLoad starts a steady request loop; Stop ends it.
func StartLoad(o LoadOptions) *Load {
	if o.Rate == 0 {
		o.Rate = 50
	}
	if o.Timeout == 0 {
		o.Timeout = time.Second
	}
	if o.Client == nil {
		o.Client = NewClient(ClientOptions{Timeout: o.Timeout})
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Load{cancel: cancel}
	l.wg.Add(1)
	go l.run(ctx, o)
	return l
}

func (l *Load) run(ctx context.Context, o LoadOptions) {
	defer l.wg.Done()
	tick := time.NewTicker(time.Second / time.Duration(o.Rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.record(l.one(o))
		}()
	}
}

func (l *Load) one(o LoadOptions) Sample {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	resp, err := Get(ctx, o.Client, o.URL)
	s := Sample{Start: start, Latency: time.Since(start), Status: resp.Status, Front: resp.Front}
	if err != nil {
		s.Err = err.Error()
	}
	return s
}

func (l *Load) record(s Sample) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.samples = append(l.samples, s)
}

// Stop ends the loop, waits for the requests in flight and returns every
// sample, in the order they were sent.
func (l *Load) Stop() LoadResult {
	l.cancel()
	l.wg.Wait()
	return l.Result()
}

// Result returns the samples so far, in the order they were sent.
func (l *Load) Result() LoadResult {
	l.mu.Lock()
	samples := append([]Sample(nil), l.samples...)
	l.mu.Unlock()
	sort.Slice(samples, func(i, j int) bool { return samples[i].Start.Before(samples[j].Start) })
	return LoadResult{Samples: samples}
}

// LoadResult is what a Load recorded.
type LoadResult struct {
	Samples []Sample
}

// Failed counts the requests that no web server answered with 200.
func (r LoadResult) Failed() int {
	n := 0
	for _, s := range r.Samples {
		if !s.OK() {
			n++
		}
	}
	return n
}

// FailedBetween counts the failed requests sent in [from, to); a zero to
// means no end.
func (r LoadResult) FailedBetween(from, to time.Time) int {
	n := 0
	for _, s := range r.Samples {
		if !s.OK() && !s.Start.Before(from) && (to.IsZero() || s.Start.Before(to)) {
			n++
		}
	}
	return n
}

// ByFront counts the successful requests per front.
func (r LoadResult) ByFront() map[string]int {
	counts := map[string]int{}
	for _, s := range r.Samples {
		if s.OK() {
			counts[s.Front]++
		}
	}
	return counts
}

// Gap is the longest client-visible outage: from the start of the last
// successful request before a run of failures to the start of the first
// successful request after it (0 when nothing failed). A failure at the end,
// with no success after it, counts until the last sample.
func (r LoadResult) Gap() time.Duration {
	var longest time.Duration
	var since time.Time // start of the current outage; zero when serving
	var lastOK time.Time
	for _, s := range r.Samples {
		switch {
		case !s.OK() && since.IsZero():
			since = lastOK
			if since.IsZero() {
				since = s.Start
			}
		case s.OK():
			if !since.IsZero() {
				longest = max(longest, s.Start.Sub(since))
				since = time.Time{}
			}
			lastOK = s.Start
		}
	}
	if !since.IsZero() {
		longest = max(longest, r.Samples[len(r.Samples)-1].Start.Sub(since))
	}
	return longest
}

// Failures describes every failed request, in send order: its send time
// from since, its latency, and its error or status.
func (r LoadResult) Failures(since time.Time) []string {
	var out []string
	for _, s := range r.Samples {
		if s.OK() {
			continue
		}
		why := s.Err
		if why == "" {
			why = fmt.Sprintf("%d %s (front %q)", s.Status, http.StatusText(s.Status), s.Front)
		}
		out = append(out, fmt.Sprintf("sent %+dms, took %dms: %s",
			s.Start.Sub(since).Milliseconds(), s.Latency.Milliseconds(), why))
	}
	return out
}

// FirstErrors returns up to n distinct failure messages, for reports.
func (r LoadResult) FirstErrors(n int) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range r.Samples {
		msg := s.Err
		if msg == "" && !s.OK() {
			msg = http.StatusText(s.Status)
		}
		if msg == "" || seen[msg] {
			continue
		}
		seen[msg] = true
		out = append(out, msg)
		if len(out) == n {
			break
		}
	}
	return out
}

// LoadAverage is the machine's 1, 5 and 15 minute load averages, for the
// reports of figures that depend on them.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
