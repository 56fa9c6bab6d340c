package haproxy

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// socketTimeout bounds one command on a socket when ctx has no deadline.
const socketTimeout = 5 * time.Second

// ServerStat is one server as HAProxy's runtime API reports it.
type ServerStat struct {
	Backend, Server string
	// Status as HAProxy says: UP, DOWN, DRAIN, MAINT, "no check", "UP 1/2"...
	// DRAIN is the runtime drain state (SetDrain).
	Status string
	// Weight is the server's effective weight: 0 takes no new clients.
	Weight int
	// Sessions is the server's current sessions (scur).
	Sessions int
	// Backup is true for a backup server (a front's backup twin).
	Backup bool
}

// Stats returns every server of every farm from `show stat`.
func (p *Process) Stats(ctx context.Context) ([]ServerStat, error) {
	// -1 4 -1: every proxy, servers only (not frontends or backends).
	out, err := command(ctx, p.RuntimeSocket(), "show stat -1 4 -1")
	if err != nil {
		return nil, err
	}
	return parseStat(out)
}

// stat columns Stats reads, by their names in the CSV header.
var statColumns = []string{"pxname", "svname", "scur", "status", "bck", "weight"}

func parseStat(out string) ([]ServerStat, error) {
	header, body, ok := strings.Cut(out, "\n")
	if !ok || !strings.HasPrefix(header, "# ") {
		return nil, fmt.Errorf("show stat: unexpected answer %q", firstLine(out))
	}
	names := strings.Split(strings.TrimPrefix(header, "# "), ",")
	col := map[string]int{}
	for _, want := range statColumns {
		col[want] = -1
		for i, n := range names {
			if n == want {
				col[want] = i
			}
		}
		if col[want] < 0 {
			return nil, fmt.Errorf("show stat: no %q column", want)
		}
	}
	r := csv.NewReader(strings.NewReader(body))
	r.FieldsPerRecord = -1
	var stats []ServerStat
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return stats, nil
		}
		if err != nil {
			return nil, fmt.Errorf("show stat: %w", err)
		}
		if len(rec) < len(names)-1 || rec[col["svname"]] == "FRONTEND" || rec[col["svname"]] == "BACKEND" {
			continue
		}
		s := ServerStat{Backend: rec[col["pxname"]], Server: rec[col["svname"]], Status: rec[col["status"]], Backup: rec[col["bck"]] == "1"}
		for _, n := range []struct {
			column string
			into   *int
		}{{"scur", &s.Sessions}, {"weight", &s.Weight}} {
			if *n.into, err = strconv.Atoi(rec[col[n.column]]); err != nil {
				return nil, fmt.Errorf("show stat: %s/%s: %s %q: %w", s.Backend, s.Server, n.column, rec[col[n.column]], err)
			}
		}
		stats = append(stats, s)
	}
}

// proxyNamePattern is what HAProxy accepts in proxy and server names; the
// runtime API splits commands on spaces, so nothing else may be sent.
var proxyNamePattern = regexp.MustCompile(`^[A-Za-z0-9._:-]+$`)

// SetDrain puts a server in the runtime drain state (no new clients; those
// holding its cookie stay) or back to ready. Reloads keep it: Apply carries
// server states over through the server-state file.
func (p *Process) SetDrain(ctx context.Context, backend, server string, drain bool) error {
	state := "ready"
	if drain {
		state = "drain"
	}
	return p.setServer(ctx, backend, server, "state "+state)
}

// drainFlag is SRV_ADMF_FDRAIN in srv_admin_state: the runtime drain that
// SetDrain sets. `show stat` hides it behind DOWN while a check fails.
const drainFlag = 0x08

// DrainStates returns, by backend then server, whether each server is in
// the runtime drain state (SetDrain), from `show servers state`: what a
// reload carried over, not what the caller last asked for.
func (p *Process) DrainStates(ctx context.Context) (map[string]map[string]bool, error) {
	out, err := command(ctx, p.RuntimeSocket(), "show servers state")
	if err != nil {
		return nil, err
	}
	return parseDrainStates(out)
}

// parseDrainStates reads `show servers state` (format version 1): a
// version line, a header naming the columns, one server per line.
func parseDrainStates(out string) (map[string]map[string]bool, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || lines[0] != "1" || !strings.HasPrefix(lines[1], "# ") {
		return nil, fmt.Errorf("show servers state: unexpected answer %q", firstLine(out))
	}
	names := strings.Fields(strings.TrimPrefix(lines[1], "# "))
	be, sv, admin := slices.Index(names, "be_name"), slices.Index(names, "srv_name"), slices.Index(names, "srv_admin_state")
	if be < 0 || sv < 0 || admin < 0 {
		return nil, fmt.Errorf("show servers state: no be_name, srv_name or srv_admin_state in %q", lines[1])
	}
	states := map[string]map[string]bool{}
	for _, line := range lines[2:] {
		f := strings.Fields(line)
		if len(f) <= max(be, sv, admin) {
			return nil, fmt.Errorf("show servers state: short line %q", line)
		}
		flags, err := strconv.Atoi(f[admin])
		if err != nil {
			return nil, fmt.Errorf("show servers state: %s/%s: srv_admin_state %q: %w", f[be], f[sv], f[admin], err)
		}
		if states[f[be]] == nil {
			states[f[be]] = map[string]bool{}
		}
		states[f[be]][f[sv]] = flags&drainFlag != 0
	}
	return states, nil
}

// SetHealthDown marks a server down as if its check had failed fall times:
// it takes no new client, and it comes back only through its check, after
// rise good ones, as any server the check took down. Its administrative
// state (a runtime drain) is left as it is.
func (p *Process) SetHealthDown(ctx context.Context, backend, server string) error {
	return p.setServer(ctx, backend, server, "health down")
}

// setServer sends `set server <backend>/<server> <what>`, which answers
// nothing when it succeeds.
func (p *Process) setServer(ctx context.Context, backend, server, what string) error {
	if !proxyNamePattern.MatchString(backend) || !proxyNamePattern.MatchString(server) {
		return fmt.Errorf("set server %q/%q: invalid backend or server name", backend, server)
	}
	cmd := fmt.Sprintf("set server %s/%s %s", backend, server, what)
	out, err := command(ctx, p.RuntimeSocket(), cmd)
	if err != nil {
		return err
	}
	if msg := strings.TrimSpace(out); msg != "" {
		return fmt.Errorf("%s: %s", cmd, msg)
	}
	return nil
}

// procList is the master's `show proc`.
type procList struct {
	reloads, failedReloads int
	workers                []int // current workers' pids (not old ones)
}

func (p *Process) showProc(ctx context.Context) (procList, error) {
	out, err := p.masterCommand(ctx, "show proc")
	if err != nil {
		return procList{}, err
	}
	return parseShowProc(out)
}

// parseShowProc reads HAProxy 2.6's `show proc`:
//
//	#<PID>          <type>          <reloads>       <uptime>        <version>
//	3929            master          2 [failed: 1]   0d00h00m20s     2.6.12
//	# workers
//	4241            worker          1               0d00h00m11s     2.6.12
//	# old workers
//	...
func parseShowProc(out string) (procList, error) {
	var l procList
	section, sawMaster := "", false
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "#") {
			section = strings.TrimSpace(strings.TrimPrefix(line, "#"))
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		switch {
		case f[1] == "master":
			sawMaster = true
			l.reloads, _ = strconv.Atoi(f[2])
			if len(f) >= 5 && f[3] == "[failed:" {
				l.failedReloads, _ = strconv.Atoi(strings.TrimSuffix(f[4], "]"))
			}
		case f[1] == "worker" && section == "workers":
			l.workers = append(l.workers, pid)
		}
	}
	if !sawMaster {
		return l, fmt.Errorf("show proc: no master in %q", firstLine(out))
	}
	return l, nil
}

// masterCommand sends one command to the master CLI.
func (p *Process) masterCommand(ctx context.Context, cmd string) (string, error) {
	return command(ctx, p.path(MasterSocketFile), cmd)
}

// command sends one command on a CLI socket and returns the whole answer.
// Closing the write side tells HAProxy the command is complete; the master
// CLI of 2.6 keeps the connection open otherwise.
func command(ctx context.Context, socket, cmd string) (string, error) {
	ctx, cancel := withDefaultTimeout(ctx, socketTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("%s on %s: %w", cmd, socket, err)
	}
	_ = conn.(*net.UnixConn).CloseWrite()
	out, err := io.ReadAll(conn)
	if err != nil {
		return "", fmt.Errorf("%s on %s: %w", cmd, socket, err)
	}
	return string(out), nil
}

// masterPID reads the pid file and reports whether that process is alive
// and is the master started on this Dir (a stale pid file may name a pid the
// kernel has given to something else).
func (p *Process) masterPID() (int, bool) {
	data, err := os.ReadFile(p.path(PIDFile))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "\x00"+p.path(PIDFile)+"\x00") {
		return pid, false
	}
	return pid, processAlive(pid)
}

// processAlive is false for a process that is gone or a zombie (a master
// that exited but whose parent has not reaped it yet).
func processAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
