package uploads

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// AuthUser is the rsync user the fronts authenticate as, with the farm's
// password.
const AuthUser = "webfarm"

// Module is one declared directory as the rsync daemon serves it.
type Module struct {
	// Name is the rsync module: unique on the node across farms.
	Name string
	// Path is the directory.
	Path string
	// UID and GID own what peers write into it.
	UID, GID int64
	// FileMode and DirMode are the permissions of what peers write.
	FileMode, DirMode os.FileMode
}

// DaemonConfig is the rsync daemon of one front.
type DaemonConfig struct {
	// Address is the node's own address: the daemon listens there only.
	Address netip.Addr
	// Port is where it listens.
	Port int
	// StateDir holds its log, pid and secrets files.
	StateDir string
	// Peers are the other fronts' addresses, the only ones allowed in.
	Peers []netip.Addr
	// Modules are the directories it serves.
	Modules []Module
}

// Files of the daemon in StateDir.
func (c DaemonConfig) configPath() string  { return filepath.Join(c.StateDir, "rsyncd.conf") }
func (c DaemonConfig) logPath() string     { return filepath.Join(c.StateDir, "rsyncd.log") }
func (c DaemonConfig) secretsPath() string { return filepath.Join(c.StateDir, "rsyncd.secrets") }

// logFormat is what the daemon logs of each file, and the transfer log
// parser reads: operation ("recv" or "del."), module, peer address, the
// item's changes, path. The changes (%i) make the daemon log every entry
// it creates, directories too: without them it logs files only, and a
// directory a peer created was taken for a local one and sent back.
const logFormat = "%o %m %a %i %n"

// Render is the daemon's rsyncd.conf. Every module is chrooted to its
// directory, munges the symlinks peers send (so none points out of it),
// takes only the farm's fronts, authenticated, and writes as the declared
// owner with the declared modes. No module is listed, none is readable by
// anyone but the fronts.
func (c DaemonConfig) Render() ([]byte, error) {
	if !c.Address.IsValid() || c.Port <= 0 || c.Port > 65535 {
		return nil, fmt.Errorf("daemon address %v port %d: invalid", c.Address, c.Port)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by webfarm-agent; rewritten at every change.\n")
	fmt.Fprintf(&b, "address = %s\nport = %d\n", c.Address, c.Port)
	fmt.Fprintf(&b, "pid file = %s\nlog file = %s\n", filepath.Join(c.StateDir, "rsyncd.pid"), c.logPath())
	fmt.Fprintf(&b, "transfer logging = yes\nlog format = %s\nreverse lookup = no\n", logFormat)
	// Its answers go at once, not after a delayed ACK (push.go, common).
	fmt.Fprintf(&b, "socket options = TCP_NODELAY\n")
	allow := hostsAllow(c.Peers)
	for _, m := range c.Modules {
		if err := checkModule(m); err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "\n[%s]\n", m.Name)
		fmt.Fprintf(&b, "\tpath = %s\n\tuse chroot = yes\n\tmunge symlinks = yes\n", m.Path)
		fmt.Fprintf(&b, "\tread only = no\n\tlist = no\n\tuid = %d\n\tgid = %d\n", m.UID, m.GID)
		fmt.Fprintf(&b, "\tincoming chmod = D%04o,F%04o\n", m.DirMode.Perm(), m.FileMode.Perm())
		fmt.Fprintf(&b, "\tauth users = %s\n\tsecrets file = %s\n\tstrict modes = yes\n", AuthUser, c.secretsPath())
		if allow != "" {
			fmt.Fprintf(&b, "\thosts allow = %s\n", allow)
		}
		fmt.Fprintf(&b, "\thosts deny = *\n")
	}
	return b.Bytes(), nil
}

// hostsAllow lists the peers, sorted; none lets nobody in ("hosts deny"
// alone then refuses everyone).
func hostsAllow(peers []netip.Addr) string {
	ps := slices.Clone(peers)
	slices.SortFunc(ps, netip.Addr.Compare)
	ps = slices.Compact(ps)
	s := make([]string, 0, len(ps))
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, " ")
}

// checkModule refuses what rsyncd.conf could misread: the API validates
// the same, this keeps a bad value from ever reaching the file.
func checkModule(m Module) error {
	if m.Name == "" || strings.ContainsAny(m.Name, "[]/\n\r\t ") {
		return fmt.Errorf("module name %q: invalid", m.Name)
	}
	if !filepath.IsAbs(m.Path) || m.Path == "/" || filepath.Clean(m.Path) != m.Path || strings.ContainsAny(m.Path, "\n\r") {
		return fmt.Errorf("module %s: path %q must be absolute, clean and not /", m.Name, m.Path)
	}
	return nil
}
