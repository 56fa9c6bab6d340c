package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/go-logr/logr"

	"github.com/webfarm/webfarm/agent/checks"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// The health checks of the standalone FailoverIPs that select this node
// (agent/checks): the node loop sets their targets at each sync, the runner
// runs them beside the other loops and puts their states in the report,
// from which the controller decides candidacy.

// runHealthChecks runs the checks until ctx is done.
func (a *Agent) runHealthChecks(ctx context.Context) {
	a.checks.Run(ctx, func(st []webfarmv1.NodeChecksStatus) {
		a.reporter.update(func(r *report) { r.Checks = st })
		a.publishSoon()
	})
}

// setCheckTargets gives the runner the checks of the FailoverIPs of snap
// that select this node.
func (a *Agent) setCheckTargets(ctx context.Context, snap *snapshot) {
	a.lastOwners.set(snap)
	targets, problems := checkTargets(snap, a.opts.ChecksDir, func(namespace, name string) (map[string][]byte, error) {
		return a.refs.secret(ctx, namespace, name)
	}, a.lastOwners.here)
	for _, p := range problems {
		logr.FromContextOrDiscard(ctx).Error(p, "Skipping a health check")
	}
	a.checks.Set(targets)
}

// secretFunc reads a Secret's data.
type secretFunc func(namespace, name string) (map[string][]byte, error)

// lastOwners tells, per FailoverIP, whether a fenced primary on this node
// is the latest (here), as of the latest snapshot and of the master hooks
// run since: this node was its last owner with nobody named since
// (lastOwnerHere), or it owns the current epoch and its master hook
// succeeded at that epoch (it fenced itself since, for a moment). The MySQL
// check reads it at each run, so that a change does not start the check
// over.
type lastOwners struct {
	mu   sync.Mutex
	fips map[string]ownerView
	// promotedAt tells the epoch of the last master hook that succeeded
	// for an address (vip.Manager.PromotedAt); nil: none.
	promotedAt func(netip.Addr) (int64, bool)
}

// ownerView is what a snapshot says of one FailoverIP for this node.
type ownerView struct {
	last    bool // lastOwnerHere
	owner   bool // this node owns the current epoch
	epoch   int64
	address netip.Addr
}

func (l *lastOwners) set(snap *snapshot) {
	fips := map[string]ownerView{}
	for key, fip := range snap.failoverIPs {
		v := ownerView{last: lastOwnerHere(fip, snap.node), owner: snap.node != "" && fip.Status.Owner == snap.node, epoch: fip.Status.Epoch}
		v.address, _ = netip.ParseAddr(fip.Spec.Address)
		fips[key] = v
	}
	l.mu.Lock()
	l.fips = fips
	l.mu.Unlock()
}

func (l *lastOwners) here(fipKey string) bool {
	l.mu.Lock()
	v, promotedAt := l.fips[fipKey], l.promotedAt
	l.mu.Unlock()
	return v.last || (v.owner && promotedAt != nil && promotedHere(promotedAt, v))
}

// promotedHere tells whether this node's master hook succeeded at the
// epoch it owns: the epoch would have changed had another node been named
// since.
func promotedHere(promotedAt func(netip.Addr) (int64, bool), v ownerView) bool {
	epoch, ok := promotedAt(v.address)
	return ok && epoch == v.epoch
}

// lastOwnerHere tells whether node was the last one named owner of fip and
// no other node is named now: whatever its server took behind the address
// is the latest (see checks.Verdict.LastOwnerHere).
func lastOwnerHere(fip *webfarmv1.FailoverIP, node string) bool {
	st := fip.Status
	return node != "" && st.LastOwner == node && (st.Owner == "" || st.Owner == node)
}

// checkTargets lists, sorted, the standalone FailoverIPs with checks that
// select this node, each with its checks. A check whose credentials cannot
// be read still runs, and fails saying why: the node must not look healthy.
func checkTargets(snap *snapshot, checksDir string, secret secretFunc, here func(fipKey string) bool) ([]checks.Target, []error) {
	if snap.self == nil {
		return nil, nil
	}
	var out []checks.Target
	var problems []error
	for _, fipKey := range snap.self.Spec.FailoverIPs {
		fip := snap.failoverIPs[fipKey]
		if fip == nil || fip.Spec.NodeSelector == nil || len(fip.Spec.Checks) == 0 {
			continue
		}
		t := checks.Target{FailoverIP: fipKey}
		for i := range fip.Spec.Checks {
			c, err := checkOf(fip, &fip.Spec.Checks[i], checksDir, secret, here)
			if err != nil {
				problems = append(problems, fmt.Errorf("FailoverIP %s: check %s: %w", fipKey, fip.Spec.Checks[i].Name, err))
			}
			t.Checks = append(t.Checks, c)
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b checks.Target) int { return strings.Compare(a.FailoverIP, b.FailoverIP) })
	return out, problems
}

// checkOf turns one check of the spec into what the runner runs. Its
// version covers the spec and the credentials, so that a change of either
// starts it over.
func checkOf(fip *webfarmv1.FailoverIP, hc *webfarmv1.HealthCheck, checksDir string, secret secretFunc, here func(fipKey string) bool) (checks.Check, error) {
	c := checks.Check{
		Name:     hc.Name,
		Interval: orDefault(hc.Interval.Duration, webfarmv1.DefaultCheckInterval),
		Timeout:  orDefault(hc.Timeout.Duration, webfarmv1.DefaultCheckTimeout),
		Rise:     int(orDefault(hc.Rise, webfarmv1.DefaultCheckRise)),
		Fall:     int(orDefault(hc.Fall, webfarmv1.DefaultCheckFall)),
	}
	version := sha256.New()
	spec, _ := json.Marshal(hc)
	version.Write(spec)
	newProbe, err := probeOf(fip, hc, checksDir, secret, here, version)
	c.Version = hex.EncodeToString(version.Sum(nil))
	if err != nil {
		failed := err
		c.NewProbe = func() (checks.Probe, error) { return nil, failed }
		return c, err
	}
	c.NewProbe = newProbe
	return c, nil
}

// probeOf returns how to make hc's probe; credentials read now go into
// version.
func probeOf(fip *webfarmv1.FailoverIP, hc *webfarmv1.HealthCheck, checksDir string, secret secretFunc, here func(fipKey string) bool, version io.Writer) (func() (checks.Probe, error), error) {
	switch {
	case hc.TCP != nil:
		addr := checks.HostPort(hc.TCP.Host, hc.TCP.Port)
		return func() (checks.Probe, error) { return checks.TCPProbe{Address: addr}, nil }, nil
	case hc.HTTP != nil:
		h := *hc.HTTP
		return func() (checks.Probe, error) { return checks.NewHTTPProbe(h.Host, h.Port, orDefault(h.Path, "/")), nil }, nil
	case hc.Exec != nil:
		env := []string{"WEBFARM_FAILOVERIP=" + key(fip), "WEBFARM_ADDRESS=" + fip.Spec.Address}
		p, err := checks.NewExecProbe(checksDir, hc.Exec.Script, hc.Exec.Args, env)
		if err != nil {
			return nil, err
		}
		return func() (checks.Probe, error) { return p, nil }, nil
	case hc.MySQL != nil:
		return mysqlProbe(fip, hc.MySQL, secret, here, version)
	}
	return nil, fmt.Errorf("check type %q has no parameters", hc.Type)
}

func mysqlProbe(fip *webfarmv1.FailoverIP, m *webfarmv1.MySQLCheck, secret secretFunc, here func(fipKey string) bool, version io.Writer) (func() (checks.Probe, error), error) {
	data, err := secret(fip.Namespace, m.CredentialsSecretRef.Name)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	user, pass := data["username"], data["password"]
	if len(user) == 0 {
		return nil, fmt.Errorf("credentials: Secret %s/%s has no key \"username\"", fip.Namespace, m.CredentialsSecretRef.Name)
	}
	version.Write(user)
	version.Write([]byte{0})
	version.Write(pass)
	o := checks.MySQLOptions{
		Address:  checks.HostPort(m.Host, orDefault(m.Port, webfarmv1.DefaultMySQLPort)),
		Username: string(user), Password: string(pass),
		AllowReplica: m.AllowPromotableReplica,
	}
	if here != nil {
		k := key(fip)
		o.LastOwnerHere = func() bool { return here(k) }
	}
	if m.MaxReplicationLag != nil {
		o.MaxLag = m.MaxReplicationLag.Duration
	}
	return func() (checks.Probe, error) { return checks.NewMySQLProbe(o) }, nil
}
