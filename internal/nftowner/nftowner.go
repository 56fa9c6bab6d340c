// Package nftowner writes and deletes nftables tables that one owner keeps
// whole (the agent's gate and hand-off forwarder), never touching another.
package nftowner

import (
	"errors"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// Layout is an owner's tables with everything in them.
type Layout struct {
	Tables []*nftables.Table
	Sets   []*nftables.Set
	Chains []*nftables.Chain
	Rules  []*nftables.Rule
}

// Write adds what is missing of l and rewrites its chains, in one
// transaction: adding an existing table, set or chain changes nothing, so
// the elements of existing sets stay.
func Write(conn *nftables.Conn, l Layout) error {
	for _, t := range l.Tables {
		conn.AddTable(t)
	}
	for _, s := range l.Sets {
		if err := conn.AddSet(s, nil); err != nil {
			return err
		}
	}
	for _, c := range l.Chains {
		conn.AddChain(c)
		conn.FlushChain(c)
	}
	for _, r := range l.Rules {
		conn.AddRule(r)
	}
	return conn.Flush()
}

// Remove deletes the tables that exist, each with all it holds.
func Remove(conn *nftables.Conn, tables ...*nftables.Table) error {
	for _, t := range tables {
		if _, err := conn.ListTableOfFamily(t.Name, t.Family); errors.Is(err, unix.ENOENT) {
			continue
		} else if err != nil {
			return err
		}
		conn.DelTable(t)
		if err := conn.Flush(); err != nil {
			return err
		}
	}
	return nil
}
