package testbed

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFirstDecisionReadsTheNewAgentsLog(t *testing.T) {
	log := filepath.Join(t.TempDir(), "agent.log")
	before := `{"level":"info","ts":"2026-12-04T01:56:40.000Z","logger":"agent","msg":"Decided","action":"Hold","epoch":3}` + "\n"
	after := `{"level":"info","ts":"2026-12-04T01:56:43.769Z","logger":"agent","msg":"Agent started","node":"front3"}
10.99.0.100:37454 [04/Dec/2026:01:56:43.715] http_10.99.0.10_80 farm_default_webfarm/front3 0/0/1/0/1 200 218 - - --NI 1/1/0/0/0 0/0 "GET / HTTP/1.1"
{"level":"info","ts":"2026-12-04T01:56:43.771Z","logger":"agent","msg":"Decided","action":"Fence","epoch":3,"reason":"has had no proof through the API server for 600ms"}
{"level":"info","ts":"2026-12-04T01:56:43.910Z","logger":"agent","msg":"Decided","action":"NotOwner","epoch":4}
`
	if err := os.WriteFile(log, []byte(before+after), 0o600); err != nil {
		t.Fatal(err)
	}
	d, ok := firstDecision(log, int64(len(before)))
	want := "Fence at 01:56:43.771 has had no proof through the API server for 600ms"
	if !ok || d.String() != want {
		t.Errorf("firstDecision = %q, %v; want %q", d, ok, want)
	}
	if d, ok := firstDecision(log, int64(len(before+after))); ok {
		t.Errorf("firstDecision found %q past the end of the log", d)
	}
}
