package testbed

import (
	"strings"
	"testing"
	"time"
)

func TestKeepalivedDatabaseConfig(t *testing.T) {
	fronts := []*Front{{Name: "front1", Address: "10.99.0.11"}, {Name: "front2", Address: "10.99.0.12"}}
	conf := keepalivedConfig(1, fronts, databaseInstance(KeepalivedDefault, "/hooks"), "/k/front2")
	for _, want := range []string{
		"    script_user root\n}",
		"vrrp_script mariadb {\n    script \"/k/front2/check-mariadb\"\n    interval 1\n",
		"vrrp_instance database {",
		"virtual_router_id 52",
		"10.99.0.22/32 dev eth0",
		"unicast_src_ip 10.99.0.12",
		"        10.99.0.11\n",
		"    track_script {\n        mariadb\n    }\n",
		"notify_master \"/hooks/mariadb-promote\"",
		"notify_fault \"/usr/bin/env WEBFARM_STATE=fault /hooks/mariadb-fence\"",
		"notify \"/k/front2/record-state /k/front2/state\"\n}\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	for _, not := range []string{"notify_backup", "{{dir}}", KeepalivedVIP + "/32"} {
		if strings.Contains(conf, not) {
			t.Errorf("config has %q:\n%s", not, conf)
		}
	}
	if front := keepalivedConfig(0, fronts, benchInstance(KeepalivedDefault), "/k/front1"); strings.Contains(front, "script_user") {
		t.Errorf("the front bench's config runs scripts:\n%s", front)
	}
}

func TestSummarizeDatabase(t *testing.T) {
	trial := func(system string, semiSync bool, gap time.Duration, failed, acked, lost int, err string) DatabaseTrial {
		return DatabaseTrial{System: system, Settings: "s", Err: err,
			DatabaseFailover: DatabaseFailover{SemiSync: semiSync, Gap: gap, Failed: failed, Acked: acked, Lost: lost}}
	}
	got := summarizeDatabase([]DatabaseTrial{
		trial("webfarm", true, 3*time.Second, 40, 100, 0, ""),
		trial("webfarm", true, time.Second, 10, 90, 0, ""),
		trial("webfarm", true, 9*time.Second, 5, 80, 1, "writes never resumed"),
		trial("webfarm", true, 2*time.Second, 20, 95, 0, ""),
		trial("keepalived", true, 4*time.Second, 70, 120, 0, ""),
		trial("webfarm", false, 2*time.Second, 30, 60, 2, ""),
	})
	want := []databaseSummary{
		{system: "webfarm", settings: "s", replication: "semi-sync", trials: 4, done: 3, failed: 75, mostFailed: 40, acked: 365, lost: 1,
			gap: Spread{N: 3, Median: 2 * time.Second, Max: 3 * time.Second}},
		{system: "keepalived", settings: "s", replication: "semi-sync", trials: 1, done: 1, failed: 70, mostFailed: 70, acked: 120,
			gap: Spread{N: 1, Median: 4 * time.Second, Max: 4 * time.Second}},
		{system: "webfarm", settings: "s", replication: "async", trials: 1, done: 1, failed: 30, mostFailed: 30, acked: 60, lost: 2,
			gap: Spread{N: 1, Median: 2 * time.Second, Max: 2 * time.Second}},
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	var b strings.Builder
	WriteDatabaseTable(&b, []DatabaseTrial{trial("webfarm", true, 1500*time.Millisecond, 3, 50, 0, "")})
	if !strings.Contains(b.String(), "1.5s / 1.5s") || !strings.Contains(b.String(), "0 of 50") {
		t.Errorf("table:\n%s", b.String())
	}
}
