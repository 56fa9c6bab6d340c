package agent

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/webfarm/webfarm/agent/prestop"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

func TestHAProxyStopNext(t *testing.T) {
	type step struct {
		requested, holding bool
		changed, answer    bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"no request: nothing to do", []step{{false, true, false, false}, {false, false, false, false}}},
		{"a request while holding: report, answer once released", []step{
			{true, true, true, false}, {true, true, false, false}, {true, false, false, true}, {true, false, false, false}}},
		{"a request while holding nothing: report and answer at once", []step{{true, false, true, true}}},
		{"withdrawn: report again", []step{{true, false, true, true}, {false, false, true, false}}},
		{"a new request after a withdrawal is answered again", []step{
			{true, false, true, true}, {false, true, true, false}, {true, true, true, false}, {true, false, false, true}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s haproxyStop
			for i, st := range tc.steps {
				changed, answer := s.next(st.requested, st.holding)
				if changed != st.changed || answer != st.answer {
					t.Fatalf("step %d (requested %t, holding %t): changed %t answer %t, want %t %t",
						i, st.requested, st.holding, changed, answer, st.changed, st.answer)
				}
			}
		})
	}
}

// TestSyncHAProxyStop is the agent's side of HAProxy's preStop hook: a
// request makes the node say it is shutting down, the answer waits until
// the controller named another owner, and a HAProxy that starts again makes
// the node eligible again.
func TestSyncHAProxyStop(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := webfarmv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	fip := testFailoverIP("front1", 3)
	cache := fake.NewClientBuilder().WithScheme(scheme).WithObjects(fip).WithStatusSubresource(fip).Build()
	dir := t.TempDir()
	a := &Agent{opts: Options{NodeName: "front1", StateDir: dir, HAProxyBeside: true}, cache: cache, reporter: &reporter{node: "front1"}}
	a.failover = newFailover(a, dir+"/ownership.json")
	ctx := context.Background()
	var s haproxyStop
	check := func(step string, shuttingDown, answered bool) {
		t.Helper()
		a.syncHAProxyStop(ctx, &s)
		got, err := prestop.Answered(dir)
		if err != nil {
			t.Fatal(err)
		}
		if a.reporter.current.ShuttingDown != shuttingDown || got != answered {
			t.Fatalf("%s: shuttingDown %t, answered %t; want %t, %t", step, a.reporter.current.ShuttingDown, got, shuttingDown, answered)
		}
	}

	check("no request", false, false)
	if err := prestop.Request(dir); err != nil {
		t.Fatal(err)
	}
	check("requested while the owner", true, false)
	fip.Status.Owner = "front2"
	if err := cache.Status().Update(ctx, fip); err != nil {
		t.Fatal(err)
	}
	check("handed off", true, true)
	if err := prestop.Withdraw(dir); err != nil {
		t.Fatal(err)
	}
	check("HAProxy started again", false, false)
}
