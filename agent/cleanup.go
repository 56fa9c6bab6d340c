package agent

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netlink"

	"github.com/webfarm/webfarm/agent/deadman"
	"github.com/webfarm/webfarm/agent/handoff"
	"github.com/webfarm/webfarm/agent/iptables"
	"github.com/webfarm/webfarm/agent/prestop"
	"github.com/webfarm/webfarm/agent/vip"
)

// Cleanup removes from the node everything an agent created there — its
// HAProxy, its nat chain and the jump to it, the failover addresses it added,
// its nftables tables (gate and hand-off forwarder), its state directory —
// and nothing else. It needs no API server: it serves
// `webfarm-agent cleanup` when a node leaves the farm.
func Cleanup(ctx context.Context, opts Options) error {
	opts, err := opts.nodeDefaults()
	if err != nil {
		return err
	}
	var errs []error
	if err := opts.HAProxy().Stop(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stopping HAProxy: %w", err))
	}
	if chain, err := iptables.New(); err != nil {
		errs = append(errs, fmt.Errorf("drain chain: %w", err))
	} else if err := chain.Cleanup(ctx); err != nil {
		errs = append(errs, fmt.Errorf("removing the drain chain: %w", err))
	}
	if err := cleanupAddresses(ctx, opts); err != nil {
		errs = append(errs, fmt.Errorf("removing failover addresses: %w", err))
	}
	if len(errs) == 0 {
		// The state goes last: it tells what to remove.
		for _, path := range []string{opts.haproxyDir(), opts.vipRecordPath(), opts.memoryPath(), opts.promisesPath(), opts.withdrawalsPath(), opts.peerKeyPath()} {
			if err := os.RemoveAll(path); err != nil {
				errs = append(errs, err)
			}
		}
		// HAProxy's hand-off request and the agent's answer (package prestop).
		if err := prestop.Withdraw(opts.StateDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func cleanupAddresses(ctx context.Context, opts Options) error {
	handle, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer handle.Close()
	m := &vip.Manager{Handle: handle, RecordPath: opts.vipRecordPath()}
	if err := m.Cleanup(ctx); err != nil {
		return err
	}
	// Only once the addresses are gone: without the gate, one left behind
	// would answer for ever.
	gate, err := deadman.New()
	if err != nil {
		return err
	}
	defer gate.Close()
	fwd, err := handoff.New()
	if err != nil {
		return err
	}
	defer fwd.Close()
	return errors.Join(gate.Remove(), fwd.Remove())
}
