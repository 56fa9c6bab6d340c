package checks

import (
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	lag := func(d time.Duration) *time.Duration { return &d }
	running := &Replication{IORunning: "Yes", SQLRunning: true, Lag: lag(0)}
	orphaned := &Replication{IORunning: "Connecting", SQLRunning: true}
	for _, tt := range []struct {
		name         string
		role         Role
		allowReplica bool
		maxLag       time.Duration
		pass         bool
	}{
		{"primary", Role{}, false, 0, true},
		{"promoted: replication stopped, not reset", Role{Replica: &Replication{IORunning: "No"}}, false, 0, true},
		{"writable replica", Role{Replica: running}, true, 0, false},
		{"fenced former primary", Role{ReadOnly: true}, true, 0, false},
		{"replica, not allowed", Role{ReadOnly: true, Replica: running}, false, 0, false},
		{"replica, allowed", Role{ReadOnly: true, Replica: running}, true, 0, true},
		{"replica of a dead primary", Role{ReadOnly: true, Replica: orphaned}, true, time.Second, true},
		{"replica, SQL thread stopped", Role{ReadOnly: true, Replica: &Replication{IORunning: "Yes"}}, true, 0, false},
		{"replica, SQL error", Role{ReadOnly: true, Replica: &Replication{IORunning: "Yes", SQLRunning: true, SQLErrno: 1062}}, true, 0, false},
		{"replica lagging", Role{ReadOnly: true, Replica: &Replication{IORunning: "Yes", SQLRunning: true, Lag: lag(30 * time.Second)}}, true, 10 * time.Second, false},
		{"replica lagging, no limit", Role{ReadOnly: true, Replica: &Replication{IORunning: "Yes", SQLRunning: true, Lag: lag(30 * time.Second)}}, true, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := Judge(tt.role, tt.allowReplica, tt.maxLag)
			t.Logf("%q %v", msg, err)
			if (err == nil) != tt.pass {
				t.Errorf("Judge = %q, %v; want pass %v", msg, err, tt.pass)
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
