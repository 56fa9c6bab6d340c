package testbed

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/webfarm/webfarm/internal/mariadbtest"
)

// MariaDB is a MariaDB server (Debian's mariadbd) inside one front's
// namespace, on its own port 3306 there, with its datadir and socket under
// the front's directory. Start it with StartMariaDB; Stop or a Crash of
// its front ends it.
type MariaDB struct {
	front *Front
	dir   string
	proc  *process
}

// StartMariaDB initialises a datadir for front (once) and starts the
// server, read-only as every server starts: only a master hook, or the
// trial's bootstrap, makes one writable. serverID must differ per server.
func StartMariaDB(f *Front, serverID int) (*MariaDB, error) {
	m := &MariaDB{front: f, dir: filepath.Join(f.dir, "mariadb")}
	if err := mariadbtest.Install(m.dir); err != nil {
		return nil, err
	}
	m.proc = &process{
		name: "mariadbd " + f.Name,
		ns:   f.Namespace,
		argv: mariadbtest.Args(m.dir, serverID),
		log:  filepath.Join(m.dir, "mariadbd.log"),
	}
	if err := m.proc.Start(); err != nil {
		return nil, err
	}
	if err := WaitFor(func() (bool, error) { _, err := m.SQL("SELECT 1"); return err == nil, nil }, 60*time.Second); err != nil {
		_ = m.proc.Kill()
		return nil, fmt.Errorf("mariadbd in %s never answered: %w\n%s", f.Namespace, err, m.proc.LogTail(20))
	}
	return m, nil
}

// SQL runs statements as root through the server's socket, from the root
// namespace, and returns the rows, tab-separated.
func (m *MariaDB) SQL(statements string) (string, error) { return mariadbtest.SQL(m.dir, statements) }

// Stop stops the server gracefully.
func (m *MariaDB) Stop() error { return m.proc.Stop() }

// Running tells whether the server process runs.
func (m *MariaDB) Running() bool { return m.proc.Running() }

// BootstrapPrimary makes m the first writable primary
// (mariadbtest.Bootstrap).
func (m *MariaDB) BootstrapPrimary(semiSync bool) error {
	_, err := m.SQL(mariadbtest.Bootstrap(semiSync))
	return err
}

// ReplicateFrom makes m a read-only GTID replica of the primary at address.
func (m *MariaDB) ReplicateFrom(address string, semiSync bool) error {
	_, err := m.SQL(mariadbtest.Replicate(address, semiSync))
	return err
}
