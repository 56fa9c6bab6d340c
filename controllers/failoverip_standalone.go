package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// A FailoverIP with spec.nodeSelector stands on its own: its fronts are
// the nodes it selects (each has a FrontNode listing it in
// spec.failoverIPs), and a node is selected for the election only while
// its agent reports its health checks passing. This feeds the election the
// same ElectionFront it gets for a farm's fronts; the election is unchanged.

// standalone tells whether fip takes its candidates from its nodeSelector.
func standalone(fip *webfarmv1.FailoverIP) bool { return fip.Spec.NodeSelector != nil }

// selectingFailoverIPs returns, sorted, the keys of the standalone
// FailoverIPs whose nodeSelector matches the node's labels. An invalid
// selector selects nothing (the API server validates it).
func selectingFailoverIPs(fips []webfarmv1.FailoverIP, nodeLabels map[string]string) []string {
	var keys []string
	for i := range fips {
		if !standalone(&fips[i]) {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(fips[i].Spec.NodeSelector)
		if err != nil || !sel.Matches(labels.Set(nodeLabels)) {
			continue
		}
		keys = append(keys, farmKey(fips[i].Namespace, fips[i].Name))
	}
	slices.Sort(keys)
	return keys
}

// frontsOfFailoverIP lists the FrontNodes of the nodes a standalone
// FailoverIP ("namespace/name") selects.
func (s *shared) frontsOfFailoverIP(ctx context.Context, key string) ([]webfarmv1.FrontNode, error) {
	var list webfarmv1.FrontNodeList
	if err := s.List(ctx, &list, client.MatchingFields{indexFrontFailoverIPs: key}); err != nil {
		return nil, fmt.Errorf("listing the nodes of FailoverIP %s: %w", key, err)
	}
	return list.Items, nil
}

// standaloneFronts gathers what the election knows of the nodes a
// standalone FailoverIP selects, and of its owner, and says for each
// selected node why it is or is not eligible so far.
func (r *FailoverIPReconciler) standaloneFronts(ctx context.Context, fip *webfarmv1.FailoverIP) ([]ElectionFront, []webfarmv1.NodeEligibility, error) {
	fronts, err := r.frontsOfFailoverIP(ctx, farmKey(fip.Namespace, fip.Name))
	if err != nil {
		return nil, nil, err
	}
	slices.SortFunc(fronts, func(a, b webfarmv1.FrontNode) int { return strings.Compare(a.Name, b.Name) })
	var out []ElectionFront
	var nodes []webfarmv1.NodeEligibility
	seen := map[string]bool{}
	for i := range fronts {
		f, err := r.electionFront(ctx, fip, &fronts[i], false)
		if err != nil {
			return nil, nil, err
		}
		e := eligibility(fip, &fronts[i])
		f.Selected = e.Eligible
		seen[f.Name] = true
		out = append(out, f)
		nodes = append(nodes, e)
	}
	if owner := fip.Status.Owner; owner != "" && !seen[owner] {
		f, err := r.formerFront(ctx, fip, owner)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, f)
	}
	return out, nodes, nil
}

// eligibility is what the checks a node's agent reports say of it: a node
// is eligible while every check passes. One whose checks are not known yet
// is not — a replica whose agent just started must prove itself first —
// unless it owns the address: an owner's agent that restarts must not hand
// a database over. Eligible here is "selected" for the election, which
// still judges presence, drain and shutdown; finishEligibility adds those.
func eligibility(fip *webfarmv1.FailoverIP, front *webfarmv1.FrontNode) webfarmv1.NodeEligibility {
	e := webfarmv1.NodeEligibility{Name: front.Name, Eligible: true, Reason: webfarmv1.EligibleCandidate, LastHook: lastHook(front, fip)}
	if len(fip.Spec.Checks) == 0 {
		return e
	}
	st := checksOf(front, fip)
	if st == nil {
		st = &webfarmv1.NodeChecksStatus{State: webfarmv1.CheckUnknown}
	}
	e.Checks = st.Checks
	switch st.State {
	case webfarmv1.CheckPassing:
	case webfarmv1.CheckFailing:
		e.Eligible, e.Reason = false, webfarmv1.EligibleChecksFail
	default:
		e.Eligible = fip.Status.Owner == front.Name
		if !e.Eligible {
			e.Reason = webfarmv1.EligibleChecksUnk
		}
	}
	return e
}

// preference is the preferred node and auto-failback the election gets
// for fip. A standalone FailoverIP with a MySQL check prefers an eligible
// writable primary (webfarmv1.CheckMessageWritablePrimary) over a
// promotable replica, whatever spec.preferredNode says: naming the replica
// would make its master hook promote it beside a live primary. It never
// moves the address away from an owner that is one (no auto-failback then).
// Otherwise the spec's preferredNode and autoFailback stand.
func preference(fip *webfarmv1.FailoverIP, nodes []webfarmv1.NodeEligibility) (string, bool) {
	var primaries []string
	for _, n := range nodes {
		if n.Eligible && writablePrimary(fip, n.Checks) {
			primaries = append(primaries, n.Name)
		}
	}
	switch {
	case len(primaries) == 0:
		return fip.Spec.PreferredNode, fip.Spec.AutoFailback
	case slices.Contains(primaries, fip.Status.Owner):
		return fip.Status.Owner, false
	case slices.Contains(primaries, fip.Spec.PreferredNode):
		return fip.Spec.PreferredNode, false
	}
	return primaries[0], false
}

// writablePrimary tells whether one of fip's MySQL checks passes on a node
// for a writable primary, as its last run saw it.
func writablePrimary(fip *webfarmv1.FailoverIP, results []webfarmv1.CheckResult) bool {
	for _, hc := range fip.Spec.Checks {
		if hc.Type != webfarmv1.CheckMySQL {
			continue
		}
		i := slices.IndexFunc(results, func(r webfarmv1.CheckResult) bool { return r.Name == hc.Name })
		if i >= 0 && results[i].State == webfarmv1.CheckPassing && results[i].Message == webfarmv1.CheckMessageWritablePrimary {
			return true
		}
	}
	return false
}

// finishEligibility settles the reasons of the nodes the checks found
// eligible, from the election's result: a candidate, or why the election
// did not count it.
func finishEligibility(nodes []webfarmv1.NodeEligibility, fronts []ElectionFront, candidates []string) []webfarmv1.NodeEligibility {
	for i := range nodes {
		n := &nodes[i]
		if !n.Eligible {
			continue
		}
		if slices.Contains(candidates, n.Name) {
			continue
		}
		n.Eligible = false
		n.Reason = webfarmv1.EligibleNotPresent
		if j := slices.IndexFunc(fronts, func(f ElectionFront) bool { return f.Name == n.Name }); j >= 0 {
			switch {
			case fronts[j].Draining:
				n.Reason = webfarmv1.EligibleDraining
			case fronts[j].ShuttingDown:
				n.Reason = webfarmv1.EligibleShutdown
			}
		}
	}
	return nodes
}

// checksOf is what front's agent reports of fip's checks; nil when nothing.
func checksOf(front *webfarmv1.FrontNode, fip *webfarmv1.FailoverIP) *webfarmv1.NodeChecksStatus {
	key := farmKey(fip.Namespace, fip.Name)
	for i := range front.Status.Checks {
		if front.Status.Checks[i].Name == key {
			return &front.Status.Checks[i]
		}
	}
	return nil
}

// lastHook is the last notify hook front's agent reports for fip.
func lastHook(front *webfarmv1.FrontNode, fip *webfarmv1.FailoverIP) *webfarmv1.HookRun {
	key := farmKey(fip.Namespace, fip.Name)
	for i := range front.Status.Hooks {
		if front.Status.Hooks[i].Name == key {
			h := front.Status.Hooks[i]
			return &h
		}
	}
	return nil
}

// Events of notify hooks.
const (
	// EventHookSucceeded: a node's notify hook for the FailoverIP exited 0.
	EventHookSucceeded = "HookSucceeded"
	// EventHookFailed: a node's notify hook failed or timed out.
	EventHookFailed = "HookFailed"
)

// hookEvents tell the notify hooks that ended since the status before: a
// node whose lastHook is new, at another epoch or state, or newly finished.
func hookEvents(before, after []webfarmv1.NodeEligibility) []eventSpec {
	var out []eventSpec
	for _, n := range after {
		h := n.LastHook
		if h == nil || h.Running {
			continue
		}
		i := slices.IndexFunc(before, func(b webfarmv1.NodeEligibility) bool { return b.Name == n.Name })
		if i >= 0 && before[i].LastHook != nil && sameHookRun(*before[i].LastHook, *h) {
			continue
		}
		if h.Succeeded {
			out = append(out, eventSpec{corev1.EventTypeNormal, EventHookSucceeded,
				fmt.Sprintf("Node %s ran its %s hook at epoch %d", n.Name, h.State, h.Epoch)})
		} else {
			out = append(out, eventSpec{corev1.EventTypeWarning, EventHookFailed,
				fmt.Sprintf("Node %s: %s hook at epoch %d failed: %s", n.Name, h.State, h.Epoch, h.Message)})
		}
	}
	return out
}

func sameHookRun(a, b webfarmv1.HookRun) bool {
	return a.State == b.State && a.Epoch == b.Epoch && a.Succeeded == b.Succeeded && a.Running == b.Running && a.FinishedTime.Equal(b.FinishedTime)
}

// Events of candidacy.
const (
	// EventNodeNotCandidate: a selected node stopped being a candidate, or
	// the reason it is not one changed.
	EventNodeNotCandidate = "NotCandidate"
	// EventNodeCandidate: a selected node that was not a candidate is one.
	EventNodeCandidate = "Candidate"
)

// eligibilityEvents tell the nodes whose candidacy changed since the status
// before, and why, so that `kubectl describe` says why a node (say, a
// returned old primary, fenced) stays out. A node seen for the first time
// is told only when it is not a candidate.
func eligibilityEvents(before, after []webfarmv1.NodeEligibility) []eventSpec {
	var out []eventSpec
	for _, n := range after {
		i := slices.IndexFunc(before, func(b webfarmv1.NodeEligibility) bool { return b.Name == n.Name })
		switch {
		case i >= 0 && before[i].Reason == n.Reason:
		case n.Eligible && i >= 0:
			out = append(out, eventSpec{corev1.EventTypeNormal, EventNodeCandidate, fmt.Sprintf("Node %s is a candidate", n.Name)})
		case !n.Eligible:
			out = append(out, eventSpec{corev1.EventTypeWarning, EventNodeNotCandidate, fmt.Sprintf("Node %s is not a candidate: %s", n.Name, whyNot(n))})
		}
	}
	return out
}

// whyNot says why n is not a candidate: its reason, with the messages of
// its failing checks.
func whyNot(n webfarmv1.NodeEligibility) string {
	var failing []string
	for _, c := range n.Checks {
		if c.State != webfarmv1.CheckPassing {
			failing = append(failing, fmt.Sprintf("%s %s (%s)", c.Name, c.State, c.Message))
		}
	}
	if len(failing) == 0 {
		return n.Reason
	}
	return n.Reason + ": " + strings.Join(failing, "; ")
}
