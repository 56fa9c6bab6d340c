package testbed

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// moveRate is the steady load's rate in measureMove (requests per second).
const moveRate = 50

// measureMove runs a steady load and the ARP watcher, does act (which must
// make the VIP leave owner), and waits until another front holds the VIP
// and serves. It returns the longest client-visible gap and the new owner,
// and records in r that no two fronts answered for the VIP at once and the
// failed requests inside the gap and after the new owner first answered.
func (tb *Testbed) measureMove(ctx context.Context, r *Result, owner string, act func() error) (time.Duration, string, error) {
	arp, err := tb.WatchARP()
	if err != nil {
		return 0, "", err
	}
	defer arp.Stop()
	load := StartLoad(LoadOptions{URL: VIPURL("/"), Rate: moveRate})
	defer load.Stop()
	if err := waitServedBy(load, "", time.Time{}); err != nil {
		return 0, "", err
	}
	started := time.Now()
	if err := act(); err != nil {
		return 0, "", err
	}
	var next string
	err = tb.WaitFor(func() (bool, error) {
		o, err := tb.Owner(ctx)
		if err != nil || o == owner || o == "" {
			return false, err
		}
		held, err := tb.Front(o).HoldsVIP()
		next = o
		return held, err
	}, changeTimeout)
	if err != nil {
		return 0, "", fmt.Errorf("the VIP did not leave %s: %w", owner, err)
	}
	// Answers after the move for as long as HAProxy's checks would take
	// to find a dead front.
	if err := waitOKAfter(load, time.Now(), answersFor(moveRate, afterMoveWatch)); err != nil {
		return 0, "", err
	}
	res := load.Stop()
	arp.Stop()
	inGap, after := moveFailures(res, started, firstClaim(arp.Events(), owner, started))
	r.Counts["failed-in-gap"], r.Counts["failed-after-move"] = inGap, after
	tb.say("   steady load: %d requests, %d failed (%d inside the gap, %d after %s first claimed the VIP), from %s to %s",
		len(res.Samples), res.Failed(), inGap, after, next, owner, next)
	conflicts := arp.Conflicts(probeInterval / 2)
	tb.say("   ARP for the VIP, seen from %s: %s", ClientNS, strings.Join(arp.Holders(), " -> "))
	if err := r.check(len(conflicts) == 0, "never two fronts answering ARP for the VIP", "%d conflicts; holders %s",
		len(conflicts), strings.Join(arp.Holders(), " -> ")); err != nil {
		return 0, "", err
	}
	return res.Gap(), next, nil
}

// holdsFor runs check every 100ms for d, and returns its first error, which
// says what stopped holding, with the time it held.
func (tb *Testbed) holdsFor(d time.Duration, check func() error) error {
	start := time.Now()
	for time.Since(start) < d {
		if err := check(); err != nil {
			return fmt.Errorf("after %s: %w", round(time.Since(start)), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func (tb *Testbed) waitPhase(ctx context.Context, name, phase string) error {
	var got string
	err := tb.WaitFor(func() (bool, error) {
		p, err := tb.Phase(ctx, name)
		got = string(p)
		return got == phase, err
	}, changeTimeout)
	if err != nil {
		return fmt.Errorf("FrontNode %s: phase %q, want %s: %w", name, got, phase, err)
	}
	return nil
}

// pinnedClient returns a client with a cookie for front name.
func pinnedClient(ctx context.Context, name string) (*http.Client, error) {
	landed := map[string]int{}
	for range 20 {
		c := NewClient(ClientOptions{Cookies: true})
		resp, err := Get(ctx, c, VIPURL("/"))
		if err != nil {
			return nil, err
		}
		if resp.Front == name {
			return c, nil
		}
		landed[resp.Front]++
	}
	return nil, fmt.Errorf("no new visitor landed on %s in 20 tries (%s)", name, formatCounts(landed))
}

func getMany(ctx context.Context, c *http.Client, n int) (map[string]int, error) {
	fronts := map[string]int{}
	for range n {
		resp, err := Get(ctx, c, VIPURL("/"))
		if err != nil {
			return fronts, fmt.Errorf("GET %s: %w", VIPURL("/"), err)
		}
		fronts[resp.Front]++
	}
	return fronts, nil
}

// waitServedBy waits until the load has a successful answer from front
// (any front when empty) sent after since.
func waitServedBy(l *Load, front string, since time.Time) error {
	err := WaitFor(func() (bool, error) {
		for _, s := range l.Result().Samples {
			if s.OK() && s.Start.After(since) && (front == "" || s.Front == front) {
				return true, nil
			}
		}
		return false, nil
	}, changeTimeout)
	if err != nil {
		return fmt.Errorf("no answer from %q in the steady load: %w", front, err)
	}
	return nil
}

// waitOKAfter waits until the load has n successful answers sent after t.
func waitOKAfter(l *Load, t time.Time, n int) error {
	return WaitFor(func() (bool, error) {
		count := 0
		for _, s := range l.Result().Samples {
			if s.OK() && s.Start.After(t) {
				count++
			}
		}
		return count >= n, nil
	}, changeTimeout)
}

// waitNotServedBy waits until front has answered none of the load's
// requests for settle, and returns when it last answered one sent after
// since (since itself if none).
func waitNotServedBy(l *Load, front string, since time.Time) (time.Time, error) {
	last := since
	err := WaitFor(func() (bool, error) {
		for _, s := range l.Result().Samples {
			if s.Front == front && s.Start.After(last) {
				last = s.Start
			}
		}
		return time.Since(last) > settle/2 && time.Since(since) > settle/2, nil
	}, changeTimeout)
	if err != nil {
		return last, fmt.Errorf("%s still gets new visitors: %w", front, err)
	}
	return last, nil
}

func cookieValue(c *http.Client, name string) string {
	req, _ := http.NewRequest(http.MethodGet, VIPURL("/"), nil)
	for _, ck := range c.Jar.Cookies(req.URL) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

func formatCounts(counts map[string]int) string {
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		label := n
		if label == "" {
			label = "(no front)"
		}
		parts[i] = fmt.Sprintf("%s %d", label, counts[n])
	}
	return strings.Join(parts, ", ")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return s
}
