package testbed

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// KeepalivedVIP is the address keepalived moves in the failover benchmark:
// not the VIP, which the webfarm agents keep managing meanwhile, so that
// the two systems never fight over one address.
const KeepalivedVIP = "10.99.0.20"

// keepalivedRouterID is the VRRP instance's virtual router id, the same on
// every front.
const keepalivedRouterID = 51

// KeepalivedSettings are the knobs a user of keepalived turns for failover
// speed.
type KeepalivedSettings struct {
	// AdvertInt is the VRRP advertisement interval; under a second needs
	// VRRP version 3 (centisecond intervals).
	AdvertInt time.Duration
}

func (s KeepalivedSettings) String() string {
	return "advert_int " + strconv.FormatFloat(s.AdvertInt.Seconds(), 'f', -1, 64)
}

// vrrpInstance is one address that keepalived moves among some fronts.
type vrrpInstance struct {
	name     string // the vrrp_instance's name
	address  string
	routerID int
	settings KeepalivedSettings
	// scripts is added before the instance (vrrp_script blocks), inside
	// its own directory dir; extra inside the instance (track_script,
	// notify). Both may name {{dir}}: the front's keepalived directory.
	scripts, extra string
}

// benchInstance is the front bench's: KeepalivedVIP on every front.
func benchInstance(s KeepalivedSettings) vrrpInstance {
	return vrrpInstance{name: "bench", address: KeepalivedVIP, routerID: keepalivedRouterID, settings: s}
}

// keepalivedConfig is a front's keepalived.conf as a user would write it
// for one floating address: one VRRP instance on the front's link, every
// front BACKUP with nopreempt (the address stays where it went, as
// webfarm's autoFailback false), priorities by front order, and unicast
// peers, so that the adverts go to the other fronts' addresses only.
// Scripts run as root, the user the agents' hooks run as.
func keepalivedConfig(front int, fronts []*Front, v vrrpInstance, dir string) string {
	var peers []string
	for i, f := range fronts {
		if i != front {
			peers = append(peers, "        "+f.Address)
		}
	}
	version := 2
	if v.settings.AdvertInt < time.Second {
		version = 3
	}
	globals := ""
	if v.scripts != "" {
		globals = "    script_user root\n"
	}
	conf := fmt.Sprintf(`global_defs {
    router_id %s
    vrrp_version %d
%s}
%s
vrrp_instance %s {
    state BACKUP
    nopreempt
    interface %s
    virtual_router_id %d
    priority %d
    advert_int %s
    unicast_src_ip %s
    unicast_peer {
%s
    }
    virtual_ipaddress {
        %s/32 dev %s
    }
%s}
`, fronts[front].Name, version, globals, v.scripts, v.name, frontLink, v.routerID, 200-10*front,
		strconv.FormatFloat(v.settings.AdvertInt.Seconds(), 'f', -1, 64),
		fronts[front].Address, strings.Join(peers, "\n"), v.address, frontLink, v.extra)
	return strings.ReplaceAll(conf, "{{dir}}", dir)
}

// keepalived is Debian's keepalived daemon inside one front's namespace,
// with its configuration and pid files in its own directory.
type keepalived struct {
	front   *Front
	address string
	dir     string
	proc    *process
}

// newKeepalived writes the i-th front's configuration into a directory of
// its own under dir.
func newKeepalived(i int, fronts []*Front, v vrrpInstance, dir string) (*keepalived, error) {
	f := fronts[i]
	dir = filepath.Join(dir, f.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(keepalivedConfig(i, fronts, v, dir)), 0o644); err != nil {
		return nil, err
	}
	return &keepalived{front: f, address: v.address, dir: dir, proc: &process{
		name: "keepalived " + f.Name,
		ns:   f.Namespace,
		argv: []string{"keepalived",
			"--dont-fork", "--log-console", "--no-syslog", "--vrrp",
			"--use-file", conf,
			"--pid", filepath.Join(dir, "keepalived.pid"),
			"--vrrp_pid", filepath.Join(dir, "vrrp.pid"),
			"--checkers_pid", filepath.Join(dir, "checkers.pid"),
			"--bfd_pid", filepath.Join(dir, "bfd.pid"),
		},
		log: filepath.Join(dir, "keepalived.log"),
	}}, nil
}

// Start starts keepalived (as BACKUP: it takes the address only if no
// other front advertises it). The pid files of a killed one go first:
// keepalived refuses to start ("daemon is already running") when a stale
// one names a live process, such as an agent started since.
func (k *keepalived) Start() error {
	for _, name := range []string{"keepalived.pid", "vrrp.pid", "checkers.pid", "bfd.pid"} {
		if err := os.Remove(filepath.Join(k.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return k.proc.Start()
}

// Kill kills keepalived and its VRRP child, which outlives a killed
// parent, and removes the address it may have left on the link.
func (k *keepalived) Kill() error {
	err := k.proc.Kill()
	if _, kerr := killNamed(k.front.Namespace, "keepalived"); kerr != nil && err == nil {
		err = kerr
	}
	if held, _ := k.front.HoldsAddress(k.address); held {
		if _, derr := k.front.Run("ip", "addr", "del", k.address+"/32", "dev", frontLink); derr != nil && err == nil {
			err = derr
		}
	}
	return err
}

// killNamed SIGKILLs the processes of the namespace whose command name is
// name, and returns how many it signalled.
func killNamed(nsName, name string) (int, error) {
	pids, err := namespacePIDs(nsName)
	if err != nil {
		return 0, err
	}
	killed := 0
	for _, pid := range pids {
		if processName(pid) == name && syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	return killed, nil
}

// keepalivedFarm is keepalived on some fronts of a testbed, for one
// address.
type keepalivedFarm struct {
	tb      *Testbed
	fronts  []*Front
	address string
	dir     string
	daemon  []*keepalived
}

// startKeepalived starts keepalived on every front for KeepalivedVIP and
// waits until exactly one front holds it. Stop kills them all.
func (tb *Testbed) startKeepalived(s KeepalivedSettings) (*keepalivedFarm, error) {
	return tb.runKeepalived(tb.fronts, benchInstance(s), func(kf *keepalivedFarm) error {
		for _, k := range kf.daemon {
			if err := k.Start(); err != nil {
				return err
			}
		}
		_, err := kf.waitHolder("")
		return err
	})
}

// runKeepalived writes the configuration of keepalived on fronts for v and
// has start start them; when start fails, every keepalived goes.
func (tb *Testbed) runKeepalived(fronts []*Front, v vrrpInstance, start func(*keepalivedFarm) error) (*keepalivedFarm, error) {
	kf, err := tb.newKeepalivedFarm(fronts, v)
	if err != nil {
		return nil, err
	}
	if err := start(kf); err != nil {
		return nil, errors.Join(err, kf.Stop())
	}
	return kf, nil
}

// newKeepalivedFarm writes the configuration of keepalived on fronts for
// v, each front's files in a directory of its own under a new temporary
// directory, and starts none.
func (tb *Testbed) newKeepalivedFarm(fronts []*Front, v vrrpInstance) (*keepalivedFarm, error) {
	dir, err := os.MkdirTemp(tb.dir, "keepalived-")
	if err != nil {
		return nil, err
	}
	kf := &keepalivedFarm{tb: tb, fronts: fronts, address: v.address, dir: dir}
	for i := range fronts {
		k, err := newKeepalived(i, fronts, v, dir)
		if err != nil {
			return nil, errors.Join(err, kf.Stop())
		}
		kf.daemon = append(kf.daemon, k)
	}
	return kf, nil
}

// holders lists the fronts that have the address on their link.
func (kf *keepalivedFarm) holders() ([]string, error) {
	var out []string
	for _, f := range kf.fronts {
		held, err := f.HoldsAddress(kf.address)
		if err != nil {
			return nil, err
		}
		if held {
			out = append(out, f.Name)
		}
	}
	return out, nil
}

// waitHolder waits until exactly one front other than old holds the
// address, and returns it.
func (kf *keepalivedFarm) waitHolder(old string) (string, error) {
	var holders []string
	err := WaitFor(func() (bool, error) {
		var err error
		holders, err = kf.holders()
		return len(holders) == 1 && holders[0] != old, err
	}, changeTimeout)
	if err != nil {
		return "", fmt.Errorf("keepalived: %s held by %v, want one front other than %q: %w\n%s",
			kf.address, holders, old, err, kf.logTails(10))
	}
	return holders[0], nil
}

// restart starts again the keepalived of a front whose processes were
// killed (a crashed, recovered front).
func (kf *keepalivedFarm) restart(front string) error {
	for _, k := range kf.daemon {
		if k.front.Name == front {
			_ = k.Kill()
			return k.Start()
		}
	}
	return fmt.Errorf("keepalived: no front %s", front)
}

// Stop kills every keepalived and removes their files and the address.
func (kf *keepalivedFarm) Stop() error {
	var errs []error
	for _, k := range kf.daemon {
		errs = append(errs, k.Kill())
	}
	errs = append(errs, os.RemoveAll(kf.dir))
	return errors.Join(errs...)
}

func (kf *keepalivedFarm) logTails(n int) string {
	var b strings.Builder
	for _, k := range kf.daemon {
		fmt.Fprintf(&b, "--- %s (last %d lines):\n%s\n", k.proc.name, n, k.proc.LogTail(n))
	}
	return b.String()
}

// masterEntries counts the times keepalived entered the MASTER state on
// any front so far, from the logs of the running daemons.
func (kf *keepalivedFarm) masterEntries() (int, error) {
	n := 0
	for _, k := range kf.daemon {
		data, err := os.ReadFile(k.proc.log)
		if err != nil {
			return 0, err
		}
		n += strings.Count(string(data), "Entering MASTER STATE")
	}
	return n, nil
}
