package mariadbtest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// mariadb-install-db bootstraps a server, which takes seconds of CPU on a
// loaded machine, and every test server needs the same fresh datadir: it
// is made once per mariadbd and these options, kept in the user's cache
// (as the control plane's builds are), and copied for each server.
var template struct {
	once sync.Once
	dir  string
	err  error
}

// Template returns the fresh datadir that every test server starts as,
// making it first if no earlier run did.
func Template() (string, error) {
	template.once.Do(func() { template.dir, template.err = makeTemplate() })
	return template.dir, template.err
}

func makeTemplate() (string, error) {
	version, err := exec.Command("mariadbd", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("mariadbd --version: %w", err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("the MariaDB datadir template: %w", err)
	}
	args := append([]string{"--no-defaults", "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db"}, storageArgs...)
	sum := sha256.Sum256([]byte(string(version) + strings.Join(args, " ")))
	root := filepath.Join(cache, "webfarm", "mariadb-datadir")
	dir := filepath.Join(root, hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(filepath.Join(dir, "mysql")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	// Made aside and renamed whole, so that a run stopped half-way, or
	// another making it at the same time, never leaves a partial one.
	tmp, err := os.MkdirTemp(root, "new-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	out, err := exec.Command("mariadb-install-db", append(args, "--datadir="+tmp)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("mariadb-install-db: %w\n%s", err, out)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	// rename(2) onto the non-empty directory of another process that
	// made it first fails: that one is as good.
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
		return "", fmt.Errorf("keeping the MariaDB datadir template: %w", err)
	}
	return dir, nil
}
