// Package mariadbtest runs Debian's MariaDB for tests, inside network
// namespaces the tests created, each server with its own datadir and socket
// under a directory of the test's: the arguments, the first install, the
// statements that make a GTID primary and replica, and a client.
package mariadbtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Users every test server knows once bootstrapped.
const (
	AdminUser = "webfarm"
	AdminPass = "webfarm-admin"
	ReplUser  = "repl"
	ReplPass  = "repl-secret"
	AppUser   = "app"
	AppPass   = "app-secret"
)

// Datadir, Socket and Log are where a server under dir keeps its data,
// socket and error log.
func Datadir(dir string) string { return filepath.Join(dir, "data") }
func Socket(dir string) string  { return filepath.Join(dir, "mariadbd.sock") }

// Install initialises dir's datadir once, as a copy of the datadir that
// mariadb-install-db made for this mariadbd (Template): root may log in
// through the socket without a password.
func Install(dir string) error {
	if _, err := os.Stat(filepath.Join(Datadir(dir), "mysql")); err == nil {
		return nil
	}
	tpl, err := Template()
	if err != nil {
		return err
	}
	// A copy stopped half-way is made again.
	if err := os.RemoveAll(Datadir(dir)); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "binlog"), 0o755); err != nil {
		return err
	}
	// cp keeps the modes and is one process for the few large files.
	if out, err := exec.Command("cp", "-a", tpl, Datadir(dir)).CombinedOutput(); err != nil {
		return fmt.Errorf("copying the MariaDB datadir %s to %s: %w: %s", tpl, dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Args is the command line of a server under dir, listening on port 3306
// of its namespace. Every server starts read-only: only a master hook, or
// a bootstrap, makes one writable, so that a returning former primary
// takes no writes.
func Args(dir string, serverID int) []string {
	return append([]string{
		"mariadbd", "--no-defaults", "--user=root",
		"--datadir=" + Datadir(dir), "--socket=" + Socket(dir), "--pid-file=" + filepath.Join(dir, "mariadbd.pid"),
		"--port=3306", "--bind-address=0.0.0.0", "--skip-name-resolve",
		"--server-id=" + strconv.Itoa(serverID), "--log-bin=" + filepath.Join(dir, "binlog", "bin"),
		"--log-basename=server" + strconv.Itoa(serverID), "--binlog-format=ROW", "--log-slave-updates", "--gtid-strict-mode=1",
		"--read-only=1",
		"--rpl-semi-sync-master-timeout=10000", "--slave-net-timeout=5",
		"--performance-schema=OFF", "--innodb-flush-log-at-trx-commit=1", "--sync-binlog=1",
	}, storageArgs...)
}

// storageArgs size InnoDB for a test server; mariadb-install-db makes the
// datadir with them too, so that a server does not resize its redo log at
// its first start.
var storageArgs = []string{"--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M"}

// SQL runs statements as root through the socket of the server under dir
// and returns the rows, tab-separated, without column names.
func SQL(dir, statements string) (string, error) {
	out, err := exec.Command("mariadb", "--no-defaults", "--socket="+Socket(dir), "-uroot", "-N", "-B", "-e", statements).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("mariadb at %s: %w: %s", Socket(dir), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// Bootstrap are the statements that make the first writable primary, with
// the users and the table trial.writes; semiSync waits for a replica's
// acknowledgement of every commit (up to 10 s, then it goes on without).
func Bootstrap(semiSync bool) string {
	stmts := []string{
		"SET GLOBAL read_only = 0",
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", ReplUser, ReplPass),
		fmt.Sprintf("GRANT REPLICATION SLAVE ON *.* TO '%s'@'%%'", ReplUser),
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", AdminUser, AdminPass),
		// What the MySQL check and the chart's MariaDB hooks need, and no
		// more (docs/install.md): SHOW SLAVE STATUS; SET GLOBAL read_only,
		// which SUPER no longer allows since 10.11; STOP SLAVE; RESET
		// SLAVE ALL, which needs RELOAD too.
		fmt.Sprintf("GRANT SLAVE MONITOR, READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, RELOAD ON *.* TO '%s'@'%%'", AdminUser),
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", AppUser, AppPass),
		"CREATE DATABASE trial",
		"CREATE TABLE trial.writes (id BIGINT PRIMARY KEY, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB",
		fmt.Sprintf("GRANT SELECT, INSERT ON trial.* TO '%s'@'%%'", AppUser),
	}
	if semiSync {
		stmts = append(stmts, "SET GLOBAL rpl_semi_sync_master_enabled = 1")
	}
	return strings.Join(stmts, ";\n")
}

// Replicate are the statements that make a read-only GTID replica of the
// primary at address, semi-synchronous when semiSync.
func Replicate(address string, semiSync bool) string {
	stmts := []string{
		"SET GLOBAL read_only = 1",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=3306, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1", address, ReplUser, ReplPass),
	}
	if semiSync {
		stmts = append(stmts, "SET GLOBAL rpl_semi_sync_slave_enabled = 1")
	}
	stmts = append(stmts, "START SLAVE")
	return strings.Join(stmts, ";\n")
}

// ClientConfig is a [client] option file for the admin user over TCP on
// loopback, as the chart's MariaDB hooks read it.
func ClientConfig() string {
	return fmt.Sprintf("[client]\nhost=127.0.0.1\nport=3306\nuser=%s\npassword=%s\n", AdminUser, AdminPass)
}
