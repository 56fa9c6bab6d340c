package checks

import (
	"testing"
	"time"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

func TestJudge(t *testing.T) {
	lag := func(d time.Duration) *time.Duration { return &d }
	running := &Replication{IORunning: "Yes", SQLRunning: true, Lag: lag(0)}
	orphaned := &Replication{IORunning: "Connecting", SQLRunning: true}
	allow := Verdict{AllowReplica: true}
	for _, tt := range []struct {
		name    string
		role    Role
		verdict Verdict
		pass    bool
		primary bool
	}{
		{"primary", Role{}, Verdict{}, true, true},
		{"promoted: replication stopped, not reset", Role{Replica: &Replication{IORunning: "No"}}, Verdict{}, true, true},
		{"writable replica", Role{Replica: running}, allow, false, false},
		{"fenced former primary", Role{ReadOnly: true}, allow, false, false},
		{"fenced primary of the last owner", Role{ReadOnly: true}, Verdict{LastOwnerHere: true}, true, false},
		{"replica, the last owner here: still not allowed", Role{ReadOnly: true, Replica: running}, Verdict{LastOwnerHere: true}, false, false},
		{"replica, not allowed", Role{ReadOnly: true, Replica: running}, Verdict{}, false, false},
		{"replica, allowed", Role{ReadOnly: true, Replica: running}, allow, true, false},
		{"replica of a dead primary", Role{ReadOnly: true, Replica: orphaned}, Verdict{AllowReplica: true, MaxLag: time.Second}, true, false},
		{"replica, replication stopped without error (a promotion stopped half-way)", Role{ReadOnly: true, Replica: &Replication{IORunning: "No"}}, allow, true, false},
		{"replica, SQL thread stopped by an error", Role{ReadOnly: true, Replica: &Replication{IORunning: "No", SQLErrno: 1062}}, allow, false, false},
		{"replica, SQL error", Role{ReadOnly: true, Replica: &Replication{IORunning: "Yes", SQLRunning: true, SQLErrno: 1062}}, allow, false, false},
		{"replica lagging", Role{ReadOnly: true, Replica: &Replication{IORunning: "Yes", SQLRunning: true, Lag: lag(30 * time.Second)}}, Verdict{AllowReplica: true, MaxLag: 10 * time.Second}, false, false},
		{"replica lagging, no limit", Role{ReadOnly: true, Replica: &Replication{IORunning: "Yes", SQLRunning: true, Lag: lag(30 * time.Second)}}, allow, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := Judge(tt.role, tt.verdict)
			t.Logf("%q %v", msg, err)
			if (err == nil) != tt.pass {
				t.Errorf("Judge = %q, %v; want pass %v", msg, err, tt.pass)
			}
			if (msg == webfarmv1.CheckMessageWritablePrimary) != tt.primary {
				t.Errorf("Judge = %q: says writable primary %v, want %v", msg, !tt.primary, tt.primary)
			}
		})
	}
}

func TestReplicationOf(t *testing.T) {
	r := replicationOf(map[string]string{"Replica_IO_Running": "Connecting", "Replica_SQL_Running": "Yes", "Last_SQL_Errno": "0"})
	if r.IORunning != "Connecting" || !r.SQLRunning || r.SQLErrno != 0 || r.Lag != nil {
		t.Errorf("new spelling: %+v", r)
	}
	r = replicationOf(map[string]string{"Slave_IO_Running": "Yes", "Slave_SQL_Running": "No", "Last_SQL_Errno": "1146", "Seconds_Behind_Master": "4"})
	if r.IORunning != "Yes" || r.SQLRunning || r.SQLErrno != 1146 || r.Lag == nil || *r.Lag != 4*time.Second {
		t.Errorf("old spelling: %+v", r)
	}
}
