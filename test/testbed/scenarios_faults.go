package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FaultScenarios are the fault trials of the VIP owner (make test-faults),
// each under the client's steady load and ARP watcher, each asserting that
// no two fronts ever answer for the VIP and that clients are served again
// while the fault lasts (no endless gap). Each lasts faultWindow, then the
// fault is undone and the farm must serve again on every front.
func FaultScenarios() []Scenario {
	return []Scenario{
		{"owner's agent SIGKILLed", AgentKilled},
		{"owner's agent SIGSTOPped 10s", AgentStopped},
		{"owner's data link down", DataLinkDown},
		{"owner's HAProxy killed, cannot restart", ProxyDead},
		{"API server black-holed for the owner", APIBlackholed},
		{"owner mute", MuteOwner},
	}
}

// faultWindow is how long each fault lasts: five default deadtimes, time
// enough for the controller to move the VIP and for a stale holder to show.
const faultWindow = 10 * time.Second

// AgentKilled: the owner's agent process is SIGKILLed on a live node:
// HAProxy, the link and the address stay; the agent is started again after
// faultWindow.
func AgentKilled(ctx context.Context, tb *Testbed) (*Result, error) {
	return tb.faultTrial(ctx, fault{
		name:   "owner's agent SIGKILLed",
		says:   "its agent process is SIGKILLed (HAProxy and the link stay up); started again after %s",
		inject: func(f *Front) error { return f.agent.KillProcess() },
		undo:   func(f *Front) error { return f.agent.Start() },
	})
}

// AgentStopped: the owner's agent is frozen (SIGSTOP) for faultWindow,
// then continues (SIGCONT), as a process stalled by the kernel or a
// debugger would.
func AgentStopped(ctx context.Context, tb *Testbed) (*Result, error) {
	return tb.faultTrial(ctx, fault{
		name:   "owner's agent SIGSTOPped",
		says:   "its agent is SIGSTOPped, SIGCONTed after %s",
		inject: func(f *Front) error { return f.agent.Signal(syscall.SIGSTOP) },
		undo:   func(f *Front) error { return f.agent.Signal(syscall.SIGCONT) },
	})
}

// DataLinkDown: the owner's link to the bridge (clients and peers) goes
// down while its path to the API server stays: the agent reaches the API
// server through a forwarder on the namespace's loopback, not over eth0.
func DataLinkDown(ctx context.Context, tb *Testbed) (*Result, error) {
	return tb.faultTrial(ctx, fault{
		name:   "owner's data link down",
		says:   "its eth0 (clients and peers) goes down, the API server stays reachable (loopback forwarder); up again after %s",
		inject: (*Front).Down,
		undo:   (*Front).Up,
	})
}

// ProxyDead: the owner's HAProxy is killed and cannot start again, its
// frontend port taken by a listener that accepts and never answers; the
// port is freed after faultWindow.
func ProxyDead(ctx context.Context, tb *Testbed) (*Result, error) {
	var squatter net.Listener
	return tb.faultTrial(ctx, fault{
		name: "owner's HAProxy killed, cannot restart",
		says: "its HAProxy is killed and its frontend port taken by a listener that never answers; freed after %s",
		inject: func(f *Front) (err error) {
			squatter, err = f.squatFrontend(frontendPort)
			return err
		},
		undo: func(*Front) error { return squatter.Close() },
	})
}

// APIBlackholed: packets between the owner's agent and the API server are
// dropped (iptables DROP in the owner's namespace, not refused), peers and
// clients still reach it.
func APIBlackholed(ctx context.Context, tb *Testbed) (*Result, error) {
	return tb.faultTrial(ctx, fault{
		name:   "API server black-holed for the owner",
		says:   "every packet to and from its API server address is dropped in its namespace (iptables DROP); restored after %s",
		inject: func(f *Front) error { return f.blackholeAPI(true) },
		undo:   func(f *Front) error { return f.blackholeAPI(false) },
	})
}

// blackholeAPI drops (or stops dropping) every packet to and from the
// front's API server address (its forwarder on the loopback), so that
// connections hang instead of being refused.
func (f *Front) blackholeAPI(drop bool) error {
	op := "-I"
	if !drop {
		op = "-D"
	}
	host, port, _ := strings.Cut(forwardedAPIAddress, ":")
	var errs []error
	for _, dir := range [][]string{{"-d", host, "--dport", port}, {"-s", host, "--sport", port}} {
		args := append([]string{"-w", op, "OUTPUT", "-o", "lo", "-p", "tcp"}, dir...)
		if _, err := f.Run("iptables", append(args, "-j", "DROP")...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// fault is one fault of the VIP owner and its undoing.
type fault struct {
	name string
	// says narrates the fault, with %s for faultWindow.
	says         string
	inject, undo func(owner *Front) error
}

// faultTrial injects the fault into the VIP owner under the client's
// probes, watches faultWindow, undoes it, watches settle more, and waits
// for the farm to serve again. It reports the load's gap, the failed
// requests, the instants of two answerers and the holders seen on the
// fronts' links; it asserts no two answerers and clients served again
// before the fault was undone.
func (tb *Testbed) faultTrial(ctx context.Context, f fault) (*Result, error) {
	r := newResult(f.name)
	fip, owner, err := tb.ownerFront(ctx)
	if err != nil {
		return r, err
	}
	tb.say("\n== Fault: %s owns the VIP (keepalive %s, deadtime %s); "+f.says, owner.Name,
		fip.Spec.Keepalive.Duration, fip.Spec.Deadtime.Duration, faultWindow)
	p, err := tb.startProbes(VIP, owner.Name)
	if err != nil {
		return r, err
	}
	links := &linkHolders{}
	injected := time.Now()
	if err := f.inject(owner); err != nil {
		p.stop(&Trial{}, injected)
		return r, err
	}
	_ = tb.holdsFor(faultWindow, links.record(tb, injected))
	undone := time.Now()
	undoErr := f.undo(owner)
	_ = tb.holdsFor(settle, links.record(tb, injected))
	ready := tb.WaitReady(ctx, readyTimeout)
	if ready == nil {
		ready = waitOKAfter(p.load, time.Now(), 10)
	}
	var t Trial
	p.stop(&t, injected)
	return r, errors.Join(undoErr, tb.reportFault(r, t, p.load.Result(), links, injected, undone), ready)
}

// reportFault records and narrates a fault trial's figures, and checks
// the invariant and that the gap ended while the fault lasted.
func (tb *Testbed) reportFault(r *Result, t Trial, res LoadResult, links *linkHolders, injected, undone time.Time) error {
	during := res.between(injected, undone)
	served := during.servedAtEnd(time.Second)
	r.figure("gap", "client-visible gap (steady load)", t.LoadGap)
	r.Counts["failed"], r.Counts["two-answerers"], r.Counts["most-link-holders"] = t.Failed, t.TwoAnswerers, links.most
	arp := "none seen"
	if t.ARPGapOK {
		arp = round(t.ARPGap).String()
	}
	tb.say("   steady load: %d of %d requests failed, longest gap %s (%s while the fault lasted); ARP gap %s",
		t.Failed, t.Requests, round(t.LoadGap), round(during.Gap()), arp)
	tb.say("   VIP on the fronts' links: %s", links)
	tb.say("   ARP claims for the VIP, seen from %s: %s; %d instants of two answerers", ClientNS, claimSequence(t.Claims), t.TwoAnswerers)
	two := r.check(t.TwoAnswerers == 0, "never two fronts answering ARP for the VIP",
		"%d instants; at most %d links holding it at once", t.TwoAnswerers, links.most)
	endless := r.check(served, "clients served again before the fault ends",
		"gap %s while the fault lasted (%s)", round(during.Gap()), formatCounts(during.ByFront()))
	return errors.Join(two, endless)
}

// maxClaims bounds the claim sequence narrated: two answerers make it
// alternate at every probe.
const maxClaims = 8

// claimSequence is the fronts that claimed the VIP in turn, the first
// maxClaims of them and how many changes followed.
func claimSequence(claims []string) string {
	if len(claims) <= maxClaims {
		return strings.Join(claims, " -> ")
	}
	return fmt.Sprintf("%s -> ... (%d changes of claimant in all)", strings.Join(claims[:maxClaims], " -> "), len(claims)-1)
}

// between returns the samples sent in [from, to).
func (r LoadResult) between(from, to time.Time) LoadResult {
	var out LoadResult
	for _, s := range r.Samples {
		if !s.Start.Before(from) && s.Start.Before(to) {
			out.Samples = append(out.Samples, s)
		}
	}
	return out
}

// servedAtEnd reports whether some request sent in the last d of the
// samples was answered.
func (r LoadResult) servedAtEnd(d time.Duration) bool {
	if len(r.Samples) == 0 {
		return false
	}
	end := r.Samples[len(r.Samples)-1].Start
	return slices.ContainsFunc(r.Samples, func(s Sample) bool { return s.OK() && end.Sub(s.Start) < d })
}

// linkHolders records which fronts have the VIP on their link over time,
// each change once.
type linkHolders struct {
	changes []string
	last    string
	most    int
}

func (l *linkHolders) record(tb *Testbed, since time.Time) func() error {
	return func() error {
		holders, err := tb.Holders()
		if err != nil {
			return err
		}
		l.most = max(l.most, len(holders))
		now := "[" + strings.Join(holders, " ") + "]"
		if now != l.last {
			l.changes = append(l.changes, now+" at "+round(time.Since(since)).String())
			l.last = now
		}
		return nil
	}
}

func (l *linkHolders) String() string {
	return strings.Join(l.changes, ", ") + " (most at once: " + strconv.Itoa(l.most) + ")"
}
