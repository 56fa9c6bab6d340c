package testbed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// ResilienceScenarios are the end-to-end checks beyond the demo, given an
// API outage duration, in the order the e2e test runs them: the agent
// restart last, since a farm it breaks may not come back.
func ResilienceScenarios(apiOutage time.Duration) []Scenario {
	return []Scenario{
		{"controller restart", ControllerRestart},
		{"owner isolated", OwnerIsolated},
		{"config reload", ConfigReload},
		APIOutage(apiOutage),
		{"agent restart", AgentRestart},
	}
}

// PeerPort is the agents' heartbeat port (their default).
const PeerPort = 7694

// vipState is who holds the VIP, by the FailoverIP's status and on links.
type vipState struct {
	owner   string
	epoch   int64
	holders []string
}

func (tb *Testbed) vipState(ctx context.Context) (vipState, error) {
	fip, err := tb.FailoverIP(ctx)
	if err != nil {
		return vipState{}, err
	}
	holders, err := tb.Holders()
	return vipState{owner: fip.Status.Owner, epoch: fip.Status.Epoch, holders: holders}, err
}

func (s vipState) String() string {
	return fmt.Sprintf("owner %s epoch %d, VIP on %v", s.owner, s.epoch, s.holders)
}

// unchanged returns a check that fails once the VIP state is not want
// (an epoch of -1 matches any).
func (tb *Testbed) unchanged(ctx context.Context, want vipState) func() error {
	return func() error {
		got, err := tb.vipState(ctx)
		if err != nil {
			return err
		}
		if got.owner != want.owner || (want.epoch != -1 && got.epoch != want.epoch) || !slices.Equal(got.holders, want.holders) {
			return fmt.Errorf("%s, was %s%s", got, want, tb.reportedVIPs(ctx, got.owner))
		}
		return nil
	}
}

// ControllerRestart: stopping and starting the controller changes nothing
// on the data path: no failed request, the VIP stays with its owner.
func ControllerRestart(ctx context.Context, tb *Testbed) (*Result, error) {
	r := newResult("controller restart")
	before, err := tb.vipState(ctx)
	if err != nil {
		return r, err
	}
	tb.say("\n== Controller restart (%s)", before)
	load := StartLoad(LoadOptions{URL: VIPURL("/"), Rate: 40})
	defer load.Stop()
	if err := tb.ctl.Stop(); err != nil {
		return r, err
	}
	held := tb.holdsFor(settle, tb.unchanged(ctx, before))
	if err := tb.ctl.Start(); err != nil {
		return r, err
	}
	if held == nil {
		held = tb.holdsFor(settle, tb.unchanged(ctx, before))
	}
	if err := r.check(held == nil, "VIP unchanged while the controller is away and after", "%v", orOK(held)); err != nil {
		return r, err
	}
	res := load.Stop()
	return r, r.check(res.Failed() == 0, "failed requests", "%d of %d %v", res.Failed(), len(res.Samples), res.FirstErrors(3))
}

// APIOutage: with the API server out of reach of the controller and every
// agent for d, no request fails and the VIP does not move.
func APIOutage(d time.Duration) Scenario {
	return Scenario{Name: "API outage " + d.String(), Run: func(ctx context.Context, tb *Testbed) (*Result, error) {
		r := newResult("API outage " + d.String())
		before, err := tb.vipState(ctx)
		if err != nil {
			return r, err
		}
		tb.say("\n== API server out of reach of everyone for %s (%s)", d, before)
		load := StartLoad(LoadOptions{URL: VIPURL("/"), Rate: 20})
		defer load.Stop()
		tb.CutAPI()
		held := tb.holdsFor(d, func() error {
			holders, err := tb.Holders()
			if err == nil && !slices.Equal(holders, before.holders) {
				err = fmt.Errorf("VIP on %v, was on %v", holders, before.holders)
			}
			return err
		})
		tb.RestoreAPI()
		if err := r.check(held == nil, "VIP stays on "+before.owner+" during the outage", "%v", orOK(held)); err != nil {
			return r, err
		}
		if err := tb.WaitReady(ctx, readyTimeout); err != nil {
			return r, err
		}
		res := load.Stop()
		tb.say("   steady load: %d requests, %d failed", len(res.Samples), res.Failed())
		failed := r.check(res.Failed() == 0, "failed requests", "%d of %d %v", res.Failed(), len(res.Samples), res.FirstErrors(3))
		after, err := tb.vipState(ctx)
		if err != nil {
			return r, err
		}
		tb.say("   after the outage: %s", after)
		moved := r.check(after.owner == before.owner && after.epoch == before.epoch, "owner and epoch after the outage", "%s, was %s", after, before)
		return r, errors.Join(failed, moved)
	}}
}

// OwnerIsolated: the VIP owner loses the API server and its peers but
// stays alive; it drops the address within deadtime, another front takes
// it, and at no moment do two fronts answer ARP for it.
func OwnerIsolated(ctx context.Context, tb *Testbed) (*Result, error) {
	r := newResult("owner isolated")
	fip, owner, err := tb.ownerFront(ctx)
	if err != nil {
		return r, err
	}
	deadtime := fip.Spec.Deadtime.Duration
	tb.say("\n== %s (the owner) loses the API server and its peers, clients still reach it (deadtime %s)", owner.Name, deadtime)
	arp, err := tb.WatchARP()
	if err != nil {
		return r, err
	}
	defer arp.Stop()
	isolated := time.Now()
	owner.CutAPI()
	if err := owner.blockPeers(true); err != nil {
		return r, err
	}
	defer owner.RestoreAPI()
	defer func() { _ = owner.blockPeers(false) }()
	err = tb.WaitFor(func() (bool, error) {
		held, err := owner.HoldsVIP()
		return !held, err
	}, changeTimeout)
	dropped := time.Since(isolated)
	if err != nil {
		return r, r.check(false, owner.Name+" drops the VIP", "still holds it after %s", changeTimeout)
	}
	r.figure("self-fence", owner.Name+" drops the VIP after", dropped)
	tb.say("   %s dropped the VIP %s after it was isolated", owner.Name, round(dropped))
	if err := r.check(dropped <= deadtime, "dropped within deadtime", "%s <= %s", round(dropped), deadtime); err != nil {
		return r, err
	}
	next, err := tb.waitNewHolder(ctx, owner.Name)
	if err != nil {
		return r, err
	}
	tb.say("   %s holds the VIP now", next)
	if err := checkSingleAnswerer(r, arp); err != nil {
		return r, err
	}
	owner.RestoreAPI()
	if err := owner.blockPeers(false); err != nil {
		return r, err
	}
	return r, tb.WaitReady(ctx, readyTimeout)
}

// checkSingleAnswerer stops arp and checks that no two fronts ever
// answered ARP for the VIP while it watched.
func checkSingleAnswerer(r *Result, arp *ARPWatcher) error {
	arp.Stop()
	conflicts := arp.Conflicts(probeInterval / 2)
	return r.check(len(conflicts) == 0, "never two fronts answering ARP", "%d conflicts; holders %s",
		len(conflicts), strings.Join(arp.Holders(), " -> "))
}

// waitNewHolder waits until a front other than old (any, when empty) owns
// and holds the VIP alone.
func (tb *Testbed) waitNewHolder(ctx context.Context, old string) (string, error) {
	var state vipState
	err := tb.WaitFor(func() (bool, error) {
		var err error
		state, err = tb.vipState(ctx)
		return err == nil && state.owner != old && state.owner != "" && slices.Equal(state.holders, []string{state.owner}), err
	}, changeTimeout)
	if err != nil {
		return "", fmt.Errorf("no new holder of the VIP (%s): %w", state, err)
	}
	return state.owner, nil
}

// blockPeers drops (or stops dropping) the agents' UDP heartbeats to and
// from the front, in its own namespace's filter table.
func (f *Front) blockPeers(block bool) error { return f.dropPeerDatagrams(block, "INPUT", "OUTPUT") }

// mutePeers drops (or stops dropping) the agents' UDP heartbeats the front
// sends; it still hears its peers.
func (f *Front) mutePeers(mute bool) error { return f.dropPeerDatagrams(mute, "OUTPUT") }

// dropPeerDatagrams inserts (or deletes) a DROP of the heartbeat port, as
// source and as destination, in each of the front's chains.
func (f *Front) dropPeerDatagrams(drop bool, chains ...string) error {
	op := "-I"
	if !drop {
		op = "-D"
	}
	port := strconv.Itoa(PeerPort)
	for _, chain := range chains {
		for _, match := range []string{"--dport", "--sport"} {
			args := []string{"-w", op, chain, "-p", "udp", match, port, "-j", "DROP"}
			if _, err := f.Run("iptables", args...); err != nil && drop {
				return err
			}
		}
	}
	return nil
}

// AgentRestart: the owner's agent dies (SIGKILL, HAProxy keeps running) and
// is started again at once: the VIP never leaves, and no request fails. At
// the CRD's default timings, not the samples' slower ones: the new agent
// must decide before the grant its predecessor left runs out, 350–550 ms
// after the kill at the defaults, and the address lapses from the link
// then. A machine too loaded to start it by then is told apart by the
// time of that first decision (restartOverran).
func AgentRestart(ctx context.Context, tb *Testbed) (*Result, error) {
	r := newResult("agent restart")
	if err := tb.SetFailoverTimings(ctx, WebfarmDefaults); err != nil {
		return r, err
	}
	before, err := tb.vipState(ctx)
	if err != nil {
		return r, err
	}
	owner := tb.Front(before.owner)
	tb.say("\n== The agent of %s (the owner) is killed and started again at once (%s)", owner.Name, WebfarmDefaults)
	arp, err := tb.WatchARP()
	if err != nil {
		return r, err
	}
	defer arp.Stop()
	load := StartLoad(LoadOptions{URL: VIPURL("/"), Rate: 40})
	defer load.Stop()
	peers := tb.watchPeers(ctx, 100*time.Millisecond)
	defer peers.Stop()
	killed := time.Now()
	if err := owner.agent.KillProcess(); err != nil {
		return r, err
	}
	logFrom := owner.agent.proc.LogSize()
	if err := owner.agent.Start(); err != nil {
		return r, err
	}
	held := tb.holdsFor(2*settle, tb.unchanged(ctx, before))
	res := load.Stop()
	// What the peers refused, from the kill on: a restarted agent unheard
	// for long loses its peers' votes.
	for _, line := range peers.Stop() {
		tb.say("   peer datagrams refused: %s", line)
	}
	for _, f := range res.Failures(peers.start) {
		tb.say("   failed: %s", f)
	}
	first, decided := firstDecision(owner.agent.LogPath(), logFrom)
	if err := r.check(decided, "the new agent decides", "%s", orNone(first.String())); err != nil {
		return r, err
	}
	late := first.at.Sub(killed)
	r.figure("first decision", "the new agent's first decision, after the kill", late)
	if late >= WebfarmDefaults.earliestGrantEnd() {
		return r, tb.restartOverran(ctx, r, late, res, arp)
	}
	if err := r.check(held == nil, "VIP stays on "+owner.Name, "%v", orOK(held)); err != nil {
		return r, err
	}
	if res.Failed() > 0 {
		// The address's grant ran out although the new agent decided
		// in time: where its start-up spent the time.
		tb.say("   killed at %s; the new agent's first lines (load average %s):\n%s", killed.UTC().Format("15:04:05.000"),
			LoadAverage(), owner.agent.proc.LogSince(logFrom, `"logger":"agent"`, 30))
	}
	return r, r.check(res.Failed() == 0, "failed requests", "%d of %d %v", res.Failed(), len(res.Samples), res.FirstErrors(3))
}

// ConfigReload: changing the balance algorithm reloads HAProxy on every
// front without failing a request; it is changed back afterwards.
func ConfigReload(ctx context.Context, tb *Testbed) (*Result, error) {
	r := newResult("config reload")
	hashes, err := tb.configHashes(ctx)
	if err != nil {
		return r, err
	}
	tb.say("\n== kubectl patch webfarm %s: balance leastconn, under a steady load", WebFarmName)
	load := StartLoad(LoadOptions{URL: VIPURL("/"), Rate: 40})
	defer load.Stop()
	for _, balance := range []webfarmv1.BalanceAlgorithm{webfarmv1.BalanceLeastConn, webfarmv1.BalanceRoundRobin} {
		patched := time.Now()
		patch := fmt.Sprintf(`{"spec":{"backend":{"balance":%q}}}`, balance)
		if _, err := tb.Kubectl("patch", "webfarms.webfarm.io", WebFarmName, "-n", SamplesNamespace, "--type", "merge", "-p", patch); err != nil {
			return r, err
		}
		var now map[string]string
		err := tb.WaitFor(func() (bool, error) {
			var err error
			now, err = tb.configHashes(ctx)
			for name, h := range now {
				if h == hashes[name] {
					return false, err
				}
			}
			return err == nil, err
		}, changeTimeout)
		if err := r.check(err == nil, "HAProxy reloaded on every front ("+string(balance)+")", "after %s", round(time.Since(patched))); err != nil {
			return r, err
		}
		hashes = now
	}
	if err := waitOKAfter(load, time.Now(), 20); err != nil {
		return r, err
	}
	res := load.Stop()
	tb.say("   steady load: %d requests, %d failed", len(res.Samples), res.Failed())
	r.Counts["failed"] = res.Failed()
	return r, r.check(res.Failed() == 0, "failed requests", "%d of %d %v", res.Failed(), len(res.Samples), res.FirstErrors(3))
}

// configHashes are the HAProxy configuration hashes the agents report.
func (tb *Testbed) configHashes(ctx context.Context) (map[string]string, error) {
	hashes := map[string]string{}
	for _, f := range tb.fronts {
		fn, err := tb.FrontNode(ctx, f.Name)
		if err != nil {
			return nil, err
		}
		hashes[f.Name] = fn.Status.Proxy.ConfigHash
	}
	return hashes, nil
}

func orOK(err error) string {
	if err == nil {
		return "held throughout"
	}
	return err.Error()
}

// reloadedSince lists the fronts whose reported HAProxy configuration hash
// differs from before.
func (tb *Testbed) reloadedSince(ctx context.Context, before map[string]string) ([]string, error) {
	now, err := tb.configHashes(ctx)
	if err != nil {
		return nil, err
	}
	var changed []string
	for _, f := range tb.fronts {
		if now[f.Name] != before[f.Name] {
			changed = append(changed, f.Name)
		}
	}
	return changed, nil
}
