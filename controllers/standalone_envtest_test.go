package controllers

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// TestEnvtestStandaloneFailoverIP: a FailoverIP with a nodeSelector and no
// WebFarm, on a real kube-apiserver. The nodes it selects get FrontNodes
// listing it; a node is a candidate only once its agent reports its checks
// passing; a failing owner is asked to release; status.nodes says why each
// node is or is not eligible, and a node that stops being a candidate and
// a hook outcome become events. Agents
// are played by status patches.
func TestEnvtestStandaloneFailoverIP(t *testing.T) {
	h := startHarness(t)
	ns := "database"
	key := ns + "/db"
	h.createNamespace(ns)
	for i, node := range []string{"db-a", "db-b", "web-a"} {
		role := "db"
		if node == "web-a" {
			role = "web"
		}
		h.createNode(node, fmt.Sprintf("10.9.1.%d", i+1), map[string]string{"role": role})
		h.renew(node)
	}
	h.createDatabaseFailoverIP(ns, "192.0.2.91", "db-a", false)
	for _, node := range []string{"db-a", "db-b"} {
		h.front(node, "a back-end FrontNode listing the FailoverIP", func(f *webfarmv1.FrontNode) error {
			if !slices.Equal(f.Spec.FailoverIPs, []string{key}) || len(f.Spec.Farms) != 0 {
				return fmt.Errorf("spec.failoverIPs %v, farms %v", f.Spec.FailoverIPs, f.Spec.Farms)
			}
			return nil
		})
	}
	h.failoverIP(ns, "db", "no check reported: nobody eligible", func(st *webfarmv1.FailoverIPStatus) error {
		if st.Owner != "" {
			return fmt.Errorf("owner %s before any check passed", st.Owner)
		}
		return nodesAre(st, "db-a", webfarmv1.EligibleChecksUnk, "db-b", webfarmv1.EligibleChecksUnk)
	})
	if err := h.c.Get(h.ctx, types.NamespacedName{Name: "web-a"}, &webfarmv1.FrontNode{}); err == nil {
		t.Error("web-a, selected by nothing, got a FrontNode")
	}

	h.reportChecks("db-a", key, webfarmv1.CheckPassing, "primary (read_only=0)")
	h.failoverIP(ns, "db", "db-a passes: it owns the address", ownerIs("db-a", 1))
	h.reportChecks("db-b", key, webfarmv1.CheckPassing, "promotable replica (IO thread Yes, lag 0s)")
	// A new candidate is no voter of epoch 1: db-a is renewed at epoch 2
	// with both as voters (failover v3, rule 6).
	h.failoverIP(ns, "db", "db-b passes: a candidate and a voter", allOf(candidatesAre("db-a", "db-b"), votersAre("db-a", "db-b"), ownerIs("db-a", 2), func(st *webfarmv1.FailoverIPStatus) error {
		return nodesAre(st, "db-a", webfarmv1.EligibleCandidate, "db-b", webfarmv1.EligibleCandidate)
	}))

	// The primary's check fails: keepalived's FAULT. It is no candidate,
	// is asked to release, and the replica takes over once it did.
	h.reportChecks("db-a", key, webfarmv1.CheckFailing, "connecting: connection refused")
	h.failoverIP(ns, "db", "db-a failing: asked to release", func(st *webfarmv1.FailoverIPStatus) error {
		if !st.ReleaseRequested {
			return fmt.Errorf("releaseRequested false")
		}
		return allOf(candidatesAre("db-b"), ownerIs("db-a", 2))(st)
	})
	h.ackRelease("db-a", key, 2)
	h.failoverIP(ns, "db", "handed to db-b", allOf(ownerIs("db-b", 3), func(st *webfarmv1.FailoverIPStatus) error {
		return nodesAre(st, "db-a", webfarmv1.EligibleChecksFail, "db-b", webfarmv1.EligibleCandidate)
	}))
	// kubectl describe says why db-a stays out.
	eventually(t, "a NotCandidate event for db-a's failing check", func() error {
		var list eventsv1.EventList
		if err := h.c.List(h.ctx, &list); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Reason == EventNodeNotCandidate && e.Type == corev1.EventTypeWarning &&
				strings.HasPrefix(e.Note, "Node db-a is not a candidate: ChecksFailing: ") && strings.Contains(e.Note, "connection refused") {
				return nil
			}
		}
		return fmt.Errorf("none among %d events", len(list.Items))
	})

	done := metav1.NewTime(time.Now().Truncate(time.Second))
	h.patchFrontStatus("db-b", map[string]any{"hooks": []webfarmv1.HookRun{{
		Name: key, State: webfarmv1.HookMaster, Epoch: 3, Succeeded: true, Message: "promoted at GTID 0-1-42", FinishedTime: &done,
	}}})
	h.failoverIP(ns, "db", "db-b's hook in status.nodes", func(st *webfarmv1.FailoverIPStatus) error {
		for _, n := range st.Nodes {
			if n.Name == "db-b" && n.LastHook != nil && n.LastHook.Succeeded && n.LastHook.Epoch == 3 {
				return nil
			}
		}
		return fmt.Errorf("nodes %+v", st.Nodes)
	})
	h.event("FailoverIP", "db", corev1.EventTypeNormal, EventHookSucceeded)
}

// TestEnvtestStandalonePrefersWritablePrimary: with several back-ends
// eligible, the election names the one whose MySQL check says it is the
// writable primary, not the spec's preferred node, a promotable replica
// whose master hook would promote it beside the live primary; and with
// autoFailback set, it never moves the address away from an owner that is
// a writable primary. The story: db-c holds the address; the operator
// switches the primary role over to db-a (db-b stays a replica, and the
// spec's preferred node) and db-c's check then fails.
func TestEnvtestStandalonePrefersWritablePrimary(t *testing.T) {
	h := startHarness(t)
	ns := "database"
	key := ns + "/db"
	h.createNamespace(ns)
	for i, node := range []string{"db-a", "db-b", "db-c"} {
		h.createNode(node, fmt.Sprintf("10.9.2.%d", i+1), map[string]string{"role": "db"})
		h.renew(node)
	}
	h.createDatabaseFailoverIP(ns, "192.0.2.92", "db-b", true)
	for _, node := range []string{"db-a", "db-b", "db-c"} {
		h.front(node, "a back-end FrontNode", func(*webfarmv1.FrontNode) error { return nil })
	}
	h.reportChecks("db-c", key, webfarmv1.CheckPassing, webfarmv1.CheckMessageWritablePrimary)
	h.failoverIP(ns, "db", "db-c, the primary, owns the address", ownerNamed("db-c"))

	// Two writable primaries for a moment (the switchover), and the spec's
	// preferred node a replica, with autoFailback: the owner keeps it.
	h.reportChecks("db-b", key, webfarmv1.CheckPassing, "promotable replica (IO thread Yes)")
	h.reportChecks("db-a", key, webfarmv1.CheckPassing, webfarmv1.CheckMessageWritablePrimary)
	h.failoverIP(ns, "db", "all three candidates; db-c kept, no release asked", allOf(candidatesAre("db-a", "db-b", "db-c"), ownerNamed("db-c"), noReleaseRequested))

	// db-c, made read-only by the switchover, fails its check: the
	// address goes to db-a, the writable primary, not to db-b.
	h.reportChecks("db-c", key, webfarmv1.CheckFailing, "read-only (read_only=1) and replicating from nobody: a fenced former primary")
	st := h.failoverIP(ns, "db", "db-c asked to release", func(st *webfarmv1.FailoverIPStatus) error {
		if !st.ReleaseRequested {
			return fmt.Errorf("releaseRequested false, owner %q", st.Owner)
		}
		return nil
	}).Status
	h.ackRelease("db-c", key, int(st.Epoch))
	h.failoverIP(ns, "db", "handed to db-a, the writable primary", ownerNamed("db-a"))

	// db-b, the spec's preferred node with autoFailback, fails and comes
	// back: the address stays with the writable primary.
	h.reportChecks("db-b", key, webfarmv1.CheckFailing, "connecting: connection refused")
	h.failoverIP(ns, "db", "db-b failing", allOf(candidatesAre("db-a"), ownerNamed("db-a")))
	h.reportChecks("db-b", key, webfarmv1.CheckPassing, "promotable replica (IO thread Yes)")
	h.failoverIP(ns, "db", "db-b back; db-a kept, no release asked", allOf(candidatesAre("db-a", "db-b"), ownerNamed("db-a"), noReleaseRequested))
}

// ownerNamed checks the owner, whatever the epoch.
func ownerNamed(owner string) func(*webfarmv1.FailoverIPStatus) error {
	return func(st *webfarmv1.FailoverIPStatus) error {
		if st.Owner != owner {
			return fmt.Errorf("owner %q at epoch %d, want %q", st.Owner, st.Epoch, owner)
		}
		return nil
	}
}

func noReleaseRequested(st *webfarmv1.FailoverIPStatus) error {
	if st.ReleaseRequested {
		return fmt.Errorf("release requested from %s at epoch %d", st.Owner, st.Epoch)
	}
	return nil
}

// createDatabaseFailoverIP creates the FailoverIP "db" of namespace,
// selecting the nodes labelled role=db, with one MySQL check.
func (h *harness) createDatabaseFailoverIP(namespace, address, preferred string, autoFailback bool) {
	h.t.Helper()
	fip := &webfarmv1.FailoverIP{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "db"},
		Spec: webfarmv1.FailoverIPSpec{
			Address: address, PreferredNode: preferred, AutoFailback: autoFailback,
			NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "db"}},
			Keepalive:    metav1.Duration{Duration: 500 * time.Millisecond},
			Deadtime:     metav1.Duration{Duration: testDeadtime},
			Guard:        metav1.Duration{Duration: testGuard},
			Checks: []webfarmv1.HealthCheck{{
				Name: "mariadb", Type: webfarmv1.CheckMySQL,
				MySQL:    &webfarmv1.MySQLCheck{CredentialsSecretRef: webfarmv1.LocalObjectReference{Name: "monitor"}, AllowPromotableReplica: true},
				Interval: metav1.Duration{Duration: time.Second}, Timeout: metav1.Duration{Duration: time.Second}, Rise: 2, Fall: 2,
			}},
		},
	}
	if err := h.c.Create(h.ctx, fip); err != nil {
		h.t.Fatalf("creating a standalone FailoverIP: %v", err)
	}
}

// reportChecks reports, as node's agent, the summary state of key's checks.
func (h *harness) reportChecks(node, key string, state webfarmv1.CheckState, message string) {
	h.t.Helper()
	h.patchFrontStatus(node, map[string]any{"checks": []webfarmv1.NodeChecksStatus{{
		Name: key, State: state, Checks: []webfarmv1.CheckResult{{Name: "mariadb", State: state, Message: message}},
	}}})
}

// nodesAre checks status.nodes: pairs of node name and reason.
func nodesAre(st *webfarmv1.FailoverIPStatus, pairs ...string) error {
	var got []string
	for _, n := range st.Nodes {
		got = append(got, n.Name, n.Reason)
	}
	if !slices.Equal(got, pairs) {
		return fmt.Errorf("status.nodes %v, want %v", got, pairs)
	}
	return nil
}
