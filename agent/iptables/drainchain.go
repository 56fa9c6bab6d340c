// Package iptables keeps the agent's DNAT drain chain: one chain in the nat
// table, jumped to once from OUTPUT, holding for every front that is not
// draining
//
//	-d <front> -p tcp --dport <drainPort> -j DNAT --to-destination <front>:<webPort>
//
// (ip6tables for IPv6 fronts). The agent owns that chain and nothing else:
// go-iptables reads the kernel's state, and every write is one
// iptables-restore --noflush transaction that replaces only our chain and
// our jump, so rules written by anyone else stay exactly as they were.
//
// Sync reads before it writes and writes nothing when the kernel already
// holds the wanted chain, so calling it every few seconds is cheap and
// repairs a chain or jump that someone flushed or deleted. Measured by
// BenchmarkNodeSync (2 cores, nft backend, inside a test namespace where each
// command also pays about 2.5 ms for `ip netns exec`), for 1,000 fronts: a
// resync that finds the chain in place 15 ms, a first sync 32 ms, a sync
// that drains one front 55 ms.
package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	goiptables "github.com/coreos/go-iptables/iptables"
	"github.com/go-logr/logr"
)

// ChainPrefix starts the name of every chain this package owns. Cleanup
// deletes exactly the nat chains whose names start with it.
const ChainPrefix = "WEBFARM-DRAIN"

// Chain is the nat chain that holds the drain rules.
const Chain = ChainPrefix

// lockWait bounds, in seconds, the wait for the xtables lock that the legacy
// backend shares with every other iptables user on the node.
const lockWait = 5

// Tools names the programs that act on one family's tables. HostTools gives
// the node's own; programs that run `ip netns exec NAME iptables "$@"` make
// a DrainChain act inside that namespace instead.
type Tools struct {
	Family Family
	// IPTables is iptables or ip6tables; it reads the current state.
	IPTables string
	// Restore is iptables-restore or ip6tables-restore; it does every write.
	Restore string
}

// HostTools returns the programs of family f found in $PATH.
func HostTools(f Family) Tools {
	if f == IPv6 {
		return Tools{Family: IPv6, IPTables: "ip6tables", Restore: "ip6tables-restore"}
	}
	return Tools{Family: IPv4, IPTables: "iptables", Restore: "iptables-restore"}
}

// DrainChain is the drain chain of every family it was given tools for.
// Its methods may be called from several goroutines.
type DrainChain struct {
	mu       sync.Mutex
	families []*familyChain
}

// familyChain is the drain chain of one family.
type familyChain struct {
	family  Family
	ipt     *goiptables.IPTables
	restore string
}

// New returns the drain chain acting through tools, one per family. With no
// tools it manages both families of the host.
func New(tools ...Tools) (*DrainChain, error) {
	if len(tools) == 0 {
		tools = []Tools{HostTools(IPv4), HostTools(IPv6)}
	}
	d := &DrainChain{}
	for _, t := range tools {
		if d.family(t.Family) != nil {
			return nil, fmt.Errorf("tools for %s given twice", t.Family)
		}
		proto := goiptables.ProtocolIPv4
		if t.Family == IPv6 {
			proto = goiptables.ProtocolIPv6
		}
		ipt, err := goiptables.New(goiptables.IPFamily(proto), goiptables.Path(t.IPTables), goiptables.Timeout(lockWait))
		if err != nil {
			return nil, fmt.Errorf("setting up %s for %s: %w", t.IPTables, t.Family, err)
		}
		d.families = append(d.families, &familyChain{family: t.Family, ipt: ipt, restore: t.Restore})
	}
	return d, nil
}

func (d *DrainChain) family(f Family) *familyChain {
	for _, c := range d.families {
		if c.family == f {
			return c
		}
	}
	return nil
}

// Sync makes each family's chain hold exactly the rules of want for that
// family (sorted, one per front and drain port) and be jumped to exactly
// once from OUTPUT. It changes nothing when that is already so. An invalid
// rule, or one of a family without tools, fails the call before anything
// is written; a failing family does not keep the others from syncing.
func (d *DrainChain) Sync(ctx context.Context, want []Rule) error {
	byFamily := make(map[Family][]Rule, len(d.families))
	for _, c := range d.families {
		rules, err := normalize(want, c.family)
		if err != nil {
			return err
		}
		byFamily[c.family] = rules
	}
	for i, r := range want {
		if d.family(FamilyOf(r.Front)) == nil {
			return fmt.Errorf("rule %d: no tools for %s front %s", i, FamilyOf(r.Front), r.Front)
		}
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, c := range d.families {
		if err := c.sync(ctx, byFamily[c.family]); err != nil {
			errs = append(errs, fmt.Errorf("syncing %s drain chain: %w", c.family, err))
		}
	}
	return errors.Join(errs...)
}

func (c *familyChain) sync(ctx context.Context, want []Rule) error {
	cur, err := c.read(ctx)
	if err != nil {
		return err
	}
	payload := syncPayload(Chain, cur, want)
	if payload == "" {
		return nil
	}
	if err := c.apply(ctx, payload); err != nil {
		return err
	}
	logr.FromContextOrDiscard(ctx).V(1).Info("Rewrote drain chain", "family", c.family, "chain", Chain, "rules", len(want))
	return nil
}

// read returns our chain and OUTPUT as the kernel holds them.
func (c *familyChain) read(ctx context.Context) (state, error) {
	var cur state
	hookRules, err := c.list(ctx, hook)
	if err != nil {
		return state{}, err
	}
	cur.hook = hookRules
	cur.chain, err = c.list(ctx, Chain)
	if err == nil {
		cur.chainExists = true
		return cur, nil
	}
	// Listing a missing chain fails with a message that differs between
	// backends (nft calls it "incompatible"), so ask once more to tell a
	// missing chain from a failure.
	if exists, existsErr := c.ipt.ChainExists(table, Chain); existsErr == nil && !exists {
		return cur, nil
	}
	return state{}, err
}

// list returns the rules ("-A …" lines) of chain.
func (c *familyChain) list(ctx context.Context, chain string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lines, err := c.ipt.List(table, chain)
	if err != nil {
		return nil, fmt.Errorf("listing %s/%s: %w", table, chain, err)
	}
	rules := lines[:0]
	for _, l := range lines {
		if strings.HasPrefix(l, "-A ") {
			rules = append(rules, l)
		}
	}
	return rules, nil
}

// apply runs one iptables-restore transaction. A restore killed by ctx
// commits nothing.
func (c *familyChain) apply(ctx context.Context, payload string) error {
	cmd := exec.CommandContext(ctx, c.restore, "--noflush", "--wait="+strconv.Itoa(lockWait))
	cmd.Stdin = strings.NewReader(payload)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("running %s: %w: %s", c.restore, err, bytes.TrimSpace(out))
	}
	return nil
}

// Cleanup removes, in every family, the jumps from OUTPUT to our chains and
// the chains themselves (every nat chain named with ChainPrefix), and
// nothing else. It is what `webfarm-agent cleanup` runs; running it again
// changes nothing.
func (d *DrainChain) Cleanup(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, c := range d.families {
		if err := c.cleanup(ctx); err != nil {
			errs = append(errs, fmt.Errorf("removing %s drain chain: %w", c.family, err))
		}
	}
	return errors.Join(errs...)
}

func (c *familyChain) cleanup(ctx context.Context) error {
	chains, err := c.ipt.ListChains(table)
	if err != nil {
		return fmt.Errorf("listing %s chains: %w", table, err)
	}
	hookRules, err := c.list(ctx, hook)
	if err != nil {
		return err
	}
	payload := cleanupPayload(ChainPrefix, chains, hookRules)
	if payload == "" {
		return nil
	}
	return c.apply(ctx, payload)
}
