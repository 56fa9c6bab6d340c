package checks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// Role is what a MySQL/MariaDB server says it is.
type Role struct {
	ReadOnly bool
	// Replica is its replication state; nil when it replicates from nobody
	// (SHOW REPLICA STATUS returns no row).
	Replica *Replication
}

// Replication is the part of SHOW REPLICA STATUS the check reads.
type Replication struct {
	// IORunning is Slave_IO_Running: Yes, No or Connecting (its primary is
	// gone).
	IORunning  string
	SQLRunning bool
	// SQLErrno is Last_SQL_Errno: non-zero when the SQL thread failed.
	SQLErrno int
	// Lag is Seconds_Behind_Master; nil when unknown (the IO thread does
	// not run).
	Lag *time.Duration
}

// Verdict is what a MySQL check weighs beside the server's role.
type Verdict struct {
	// AllowReplica passes a promotable replica: its SQL thread runs
	// without error and its lag, when known and MaxLag is set, is within
	// MaxLag — the master hook will promote it.
	AllowReplica bool
	MaxLag       time.Duration
	// LastOwnerHere: this node was the last one named owner of the
	// address, and no other node has been since (status.lastOwner, with
	// no other owner now), or it owns the current epoch and its master
	// hook succeeded at that epoch. A read-only server that replicates from nobody
	// is then this node's own primary, fenced by its fault hook, and the
	// master hook may make it writable again.
	LastOwnerHere bool
}

// Judge decides whether a server with role may hold a database address: a
// writable server that replicates from nobody does (the primary); a
// read-only replica does as v says. A read-only server that replicates
// from nobody is a fenced former primary and does only when this node held
// the address last, nor does a writable server that replicates.
func Judge(r Role, v Verdict) (string, error) {
	switch {
	case !r.ReadOnly && (r.Replica == nil || !r.Replica.SQLRunning):
		return webfarmv1.CheckMessageWritablePrimary, nil
	case !r.ReadOnly:
		return "", errors.New("writable (read_only=0) while replicating: not a primary to send writes to")
	case r.Replica == nil && v.LastOwnerHere:
		return "fenced primary of the last owner (read_only=1, replicating from nobody): may be made writable again", nil
	case r.Replica == nil:
		return "", errors.New("read-only (read_only=1) and replicating from nobody: a fenced former primary")
	case !v.AllowReplica:
		return "", errors.New("read-only replica, and allowPromotableReplica is off")
	case r.Replica.SQLErrno != 0:
		return "", fmt.Errorf("replica whose SQL thread failed (Last_SQL_Errno %d)", r.Replica.SQLErrno)
	case !r.Replica.SQLRunning:
		// A master hook stopped half-way (after STOP SLAVE) leaves this;
		// the next one starts the SQL thread again and applies the relay
		// log before it promotes.
		return fmt.Sprintf("promotable replica, replication stopped without error (IO thread %s)", r.Replica.IORunning), nil
	case v.MaxLag > 0 && r.Replica.Lag != nil && *r.Replica.Lag > v.MaxLag:
		return "", fmt.Errorf("replica more than %s behind its primary", v.MaxLag)
	}
	return fmt.Sprintf("promotable replica (IO thread %s)", r.Replica.IORunning), nil
}

// MySQLProbe connects to a MySQL/MariaDB server at every run and judges its
// role.
type MySQLProbe struct {
	db            *sql.DB
	allowReplica  bool
	maxLag        time.Duration
	lastOwnerHere func() bool
}

// MySQLOptions configure a MySQLProbe.
type MySQLOptions struct {
	// Address is host:port.
	Address string
	// Net is "tcp" (the default) or a network registered with
	// mysql.RegisterDialContext.
	Net                string
	Username, Password string
	AllowReplica       bool
	MaxLag             time.Duration
	// LastOwnerHere tells, at each run, Verdict.LastOwnerHere; nil: never.
	LastOwnerHere func() bool
}

// NewMySQLProbe prepares the probe; it connects only at each run.
func NewMySQLProbe(o MySQLOptions) (*MySQLProbe, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = o.Username, o.Password
	cfg.Net, cfg.Addr = "tcp", o.Address
	if o.Net != "" {
		cfg.Net = o.Net
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql check of %s: %w", o.Address, err)
	}
	db := sql.OpenDB(connector)
	// Every run dials: a pooled connection would hide a server that no
	// longer accepts.
	db.SetMaxIdleConns(0)
	db.SetMaxOpenConns(1)
	return &MySQLProbe{db: db, allowReplica: o.AllowReplica, maxLag: o.MaxLag, lastOwnerHere: o.LastOwnerHere}, nil
}

// Close releases the probe.
func (p *MySQLProbe) Close() error { return p.db.Close() }

func (p *MySQLProbe) Run(ctx context.Context) (string, error) {
	conn, err := p.db.Conn(ctx)
	if err != nil {
		return "", fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close()
	role, err := readRole(ctx, conn)
	if err != nil {
		return "", err
	}
	v := Verdict{AllowReplica: p.allowReplica, MaxLag: p.maxLag}
	if p.lastOwnerHere != nil {
		v.LastOwnerHere = p.lastOwnerHere()
	}
	return Judge(role, v)
}

func readRole(ctx context.Context, conn *sql.Conn) (Role, error) {
	var r Role
	if err := conn.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&r.ReadOnly); err != nil {
		return r, fmt.Errorf("reading @@read_only: %w", err)
	}
	rows, err := conn.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		// MySQL 8.4 knows only the new spelling.
		rows, err = conn.QueryContext(ctx, "SHOW REPLICA STATUS")
	}
	if err != nil {
		return r, fmt.Errorf("reading the replication state: %w", err)
	}
	defer rows.Close()
	fields, err := firstRow(rows)
	if err != nil || fields == nil {
		return r, err
	}
	r.Replica = replicationOf(fields)
	return r, nil
}

// firstRow returns the first row by column name; nil when there is none.
func firstRow(rows *sql.Rows) (map[string]string, error) {
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("reading the replication state: %w", err)
	}
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, fmt.Errorf("reading the replication state: %w", err)
	}
	out := make(map[string]string, len(cols))
	for i, c := range cols {
		if vals[i].Valid {
			out[c] = vals[i].String
		}
	}
	return out, nil
}

// replicationOf reads the columns under either spelling (Slave_/Replica_,
// _Master/_Source).
func replicationOf(f map[string]string) *Replication {
	get := func(names ...string) (string, bool) {
		for _, n := range names {
			if v, ok := f[n]; ok {
				return v, true
			}
		}
		return "", false
	}
	r := &Replication{}
	r.IORunning, _ = get("Slave_IO_Running", "Replica_IO_Running")
	sqlRunning, _ := get("Slave_SQL_Running", "Replica_SQL_Running")
	r.SQLRunning = sqlRunning == "Yes"
	if v, ok := get("Last_SQL_Errno"); ok {
		r.SQLErrno, _ = strconv.Atoi(v)
	}
	if v, ok := get("Seconds_Behind_Master", "Seconds_Behind_Source"); ok {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil {
			lag := time.Duration(s) * time.Second
			r.Lag = &lag
		}
	}
	return r
}
