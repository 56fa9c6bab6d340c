package controllers

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

func dbFailoverIP(owner string, checks bool) *webfarmv1.FailoverIP {
	fip := &webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "primary"}}
	fip.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"role": "db"}}
	if checks {
		fip.Spec.Checks = []webfarmv1.HealthCheck{{Name: "mysql", Type: webfarmv1.CheckMySQL}}
	}
	fip.Status.Owner = owner
	return fip
}

func backNode(name string, state webfarmv1.CheckState) *webfarmv1.FrontNode {
	f := &webfarmv1.FrontNode{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if state != "" {
		f.Status.Checks = []webfarmv1.NodeChecksStatus{{Name: "db/primary", State: state,
			Checks: []webfarmv1.CheckResult{{Name: "mysql", State: state}}}}
	}
	return f
}

func TestSelectingFailoverIPs(t *testing.T) {
	db := *dbFailoverIP("", false)
	farmOnly := webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "web"}}
	all := webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "all"}}
	all.Spec.NodeSelector = &metav1.LabelSelector{}
	bad := webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "bad"}}
	bad.Spec.NodeSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Bogus"}}}
	fips := []webfarmv1.FailoverIP{all, farmOnly, db, bad}
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   []string
	}{
		{"db node", map[string]string{"role": "db"}, []string{"db/primary", "x/all"}},
		{"other node", map[string]string{"role": "web"}, []string{"x/all"}},
		{"no labels", nil, []string{"x/all"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := selectingFailoverIPs(fips, tt.labels); !slices.Equal(got, tt.want) {
				t.Errorf("selectingFailoverIPs = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEligibility(t *testing.T) {
	for _, tt := range []struct {
		name     string
		fip      *webfarmv1.FailoverIP
		front    *webfarmv1.FrontNode
		eligible bool
		reason   string
	}{
		{"no checks: every selected node", dbFailoverIP("", false), backNode("b1", ""), true, webfarmv1.EligibleCandidate},
		{"passing", dbFailoverIP("", true), backNode("b1", webfarmv1.CheckPassing), true, webfarmv1.EligibleCandidate},
		{"failing", dbFailoverIP("", true), backNode("b1", webfarmv1.CheckFailing), false, webfarmv1.EligibleChecksFail},
		{"failing owner", dbFailoverIP("b1", true), backNode("b1", webfarmv1.CheckFailing), false, webfarmv1.EligibleChecksFail},
		{"unknown newcomer", dbFailoverIP("b2", true), backNode("b1", webfarmv1.CheckUnknown), false, webfarmv1.EligibleChecksUnk},
		{"no report from a newcomer", dbFailoverIP("", true), backNode("b1", ""), false, webfarmv1.EligibleChecksUnk},
		{"unknown owner (agent restarted) keeps it", dbFailoverIP("b1", true), backNode("b1", webfarmv1.CheckUnknown), true, webfarmv1.EligibleCandidate},
		{"owner that never reported keeps it", dbFailoverIP("b1", true), backNode("b1", ""), true, webfarmv1.EligibleCandidate},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := eligibility(tt.fip, tt.front)
			if e.Eligible != tt.eligible || e.Reason != tt.reason {
				t.Errorf("eligibility = %v/%s, want %v/%s", e.Eligible, e.Reason, tt.eligible, tt.reason)
			}
		})
	}
}

// TestPreference: an eligible writable primary is preferred over the
// spec's preferred node, and the address never moves away from an owner
// that is one; with none, the spec stands.
func TestPreference(t *testing.T) {
	primary := []webfarmv1.CheckResult{{Name: "mysql", State: webfarmv1.CheckPassing, Message: webfarmv1.CheckMessageWritablePrimary}}
	replica := []webfarmv1.CheckResult{{Name: "mysql", State: webfarmv1.CheckPassing, Message: "promotable replica (IO thread Yes)"}}
	failingPrimary := []webfarmv1.CheckResult{{Name: "mysql", State: webfarmv1.CheckFailing, Message: webfarmv1.CheckMessageWritablePrimary}}
	node := func(name string, eligible bool, checks []webfarmv1.CheckResult) webfarmv1.NodeEligibility {
		return webfarmv1.NodeEligibility{Name: name, Eligible: eligible, Checks: checks}
	}
	for _, tt := range []struct {
		name         string
		owner        string
		nodes        []webfarmv1.NodeEligibility
		preferred    string
		autoFailback bool
	}{
		{"no primary: the spec", "", []webfarmv1.NodeEligibility{node("b1", true, replica), node("b2", true, replica)}, "b2", true},
		{"the primary over the spec's replica", "", []webfarmv1.NodeEligibility{node("b1", true, primary), node("b2", true, replica)}, "b1", false},
		{"an ineligible primary counts for nothing", "", []webfarmv1.NodeEligibility{node("b1", false, primary), node("b2", true, replica)}, "b2", true},
		{"a primary whose check fails counts for nothing", "", []webfarmv1.NodeEligibility{node("b1", true, failingPrimary), node("b2", true, replica)}, "b2", true},
		{"two primaries: the spec's among them", "", []webfarmv1.NodeEligibility{node("b1", true, primary), node("b2", true, primary)}, "b2", false},
		{"two primaries: never away from the owner", "b1", []webfarmv1.NodeEligibility{node("b1", true, primary), node("b2", true, primary)}, "b1", false},
		{"owner promoting, a primary elsewhere: no failback", "b2", []webfarmv1.NodeEligibility{node("b1", true, primary), node("b2", true, replica)}, "b1", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fip := dbFailoverIP(tt.owner, true)
			fip.Spec.PreferredNode, fip.Spec.AutoFailback = "b2", true
			preferred, autoFailback := preference(fip, tt.nodes)
			if preferred != tt.preferred || autoFailback != tt.autoFailback {
				t.Errorf("preference = %q, autoFailback %v; want %q, %v", preferred, autoFailback, tt.preferred, tt.autoFailback)
			}
		})
	}
	farm := dbFailoverIP("", false)
	farm.Spec.PreferredNode = "f1"
	if p, _ := preference(farm, nil); p != "f1" {
		t.Errorf("a farm's FailoverIP: preferred %q, want the spec's", p)
	}
}

func TestFinishEligibility(t *testing.T) {
	nodes := []webfarmv1.NodeEligibility{
		{Name: "b1", Eligible: true, Reason: webfarmv1.EligibleCandidate},
		{Name: "b2", Eligible: true, Reason: webfarmv1.EligibleCandidate},
		{Name: "b3", Eligible: true, Reason: webfarmv1.EligibleCandidate},
		{Name: "b4", Eligible: false, Reason: webfarmv1.EligibleChecksFail},
		{Name: "b5", Eligible: true, Reason: webfarmv1.EligibleCandidate},
	}
	fronts := []ElectionFront{{Name: "b1"}, {Name: "b2", Draining: true}, {Name: "b3", ShuttingDown: true}, {Name: "b4"}, {Name: "b5"}}
	got := finishEligibility(nodes, fronts, []string{"b1"})
	want := []string{webfarmv1.EligibleCandidate, webfarmv1.EligibleDraining, webfarmv1.EligibleShutdown, webfarmv1.EligibleChecksFail, webfarmv1.EligibleNotPresent}
	for i, n := range got {
		if n.Reason != want[i] || n.Eligible != (i == 0) {
			t.Errorf("%s: %v/%s, want %v/%s", n.Name, n.Eligible, n.Reason, i == 0, want[i])
		}
	}
}

func TestHookEvents(t *testing.T) {
	done := metav1.Now()
	ran := func(ok, running bool, epoch int64) *webfarmv1.HookRun {
		return &webfarmv1.HookRun{Name: "db/primary", State: webfarmv1.HookMaster, Epoch: epoch, Succeeded: ok, Running: running, FinishedTime: &done}
	}
	for _, tt := range []struct {
		name          string
		before, after *webfarmv1.HookRun
		want          []string
	}{
		{"first success", nil, ran(true, false, 2), []string{EventHookSucceeded}},
		{"failure", nil, ran(false, false, 2), []string{EventHookFailed}},
		{"still running", nil, ran(false, true, 2), nil},
		{"same outcome again", ran(true, false, 2), ran(true, false, 2), nil},
		{"next epoch", ran(true, false, 2), ran(true, false, 3), []string{EventHookSucceeded}},
		{"ended after running", ran(false, true, 2), ran(false, false, 2), []string{EventHookFailed}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := []webfarmv1.NodeEligibility{{Name: "b1", LastHook: tt.before}}
			after := []webfarmv1.NodeEligibility{{Name: "b1", LastHook: tt.after}}
			var got []string
			for _, e := range hookEvents(before, after) {
				got = append(got, e.reason)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("events = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEligibilityEvents(t *testing.T) {
	node := func(eligible bool, reason string, checks ...webfarmv1.CheckResult) []webfarmv1.NodeEligibility {
		return []webfarmv1.NodeEligibility{{Name: "b1", Eligible: eligible, Reason: reason, Checks: checks}}
	}
	fenced := webfarmv1.CheckResult{Name: "mariadb", State: webfarmv1.CheckFailing, Message: "read-only (read_only=1) and replicating from nobody: a fenced former primary"}
	passing := webfarmv1.CheckResult{Name: "tcp", State: webfarmv1.CheckPassing, Message: "connected"}
	for _, tt := range []struct {
		name          string
		before, after []webfarmv1.NodeEligibility
		want          string
	}{
		{"new candidate", nil, node(true, webfarmv1.EligibleCandidate), ""},
		{"still a candidate", node(true, webfarmv1.EligibleCandidate), node(true, webfarmv1.EligibleCandidate), ""},
		{"returned fenced primary", nil, node(false, webfarmv1.EligibleChecksFail, passing, fenced),
			"Warning NotCandidate Node b1 is not a candidate: ChecksFailing: mariadb Failing (read-only (read_only=1) and replicating from nobody: a fenced former primary)"},
		{"checks fail", node(true, webfarmv1.EligibleCandidate), node(false, webfarmv1.EligibleChecksFail, fenced),
			"Warning NotCandidate Node b1 is not a candidate: ChecksFailing: mariadb Failing (read-only (read_only=1) and replicating from nobody: a fenced former primary)"},
		{"same reason again", node(false, webfarmv1.EligibleChecksFail, fenced), node(false, webfarmv1.EligibleChecksFail, fenced), ""},
		{"another reason", node(false, webfarmv1.EligibleChecksUnk), node(false, webfarmv1.EligibleNotPresent),
			"Warning NotCandidate Node b1 is not a candidate: NotPresent"},
		{"candidate again", node(false, webfarmv1.EligibleChecksFail, fenced), node(true, webfarmv1.EligibleCandidate),
			"Normal Candidate Node b1 is a candidate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range eligibilityEvents(tt.before, tt.after) {
				got = append(got, e.kind+" "+e.reason+" "+e.note)
			}
			var want []string
			if tt.want != "" {
				want = []string{tt.want}
			}
			if !slices.Equal(got, want) {
				t.Errorf("events = %q, want %q", got, want)
			}
		})
	}
}
