package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/go-logr/logr"

	"github.com/webfarm/webfarm/agent/vip"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// settle runs before the decisions of a pass. It removes the address of
// every memory whose FailoverIP is gone from the cache, or was recreated
// under the same name (another UID), drops that memory so that no epoch of
// the old object blocks the new one, and binds every other memory to its
// live object.
func (f *failover) settle(ctx context.Context, snap *snapshot) {
	log := logr.FromContextOrDiscard(ctx)
	live := make(map[string]heldObject, len(snap.failoverIPs))
	for key, fip := range snap.failoverIPs {
		live[key] = heldObjectOf(fip)
	}
	for _, o := range f.memory.orphans(live) {
		if err := f.removeOrphan(ctx, o); err != nil {
			log.Error(err, "Removing the address of a FailoverIP that is gone or was recreated", "failoverIP", o.key)
		}
	}
	if err := f.memory.bind(live); err != nil {
		log.Error(err, "Saving the ownership memory")
	}
}

// removeOrphan takes the address of o off the node, if it holds it, then
// forgets o. A memory read from a file of an older agent, whose object was
// deleted before this agent saw it, names no address: it is forgotten with
// an error, since guessing the address could remove another one.
func (f *failover) removeOrphan(ctx context.Context, o entry) error {
	if o.memory.Holding {
		if o.object.Address == "" {
			ferr := f.memory.forget(o.key, o.object)
			return fmt.Errorf("held at epoch %d by an older agent, whose state file does not say which address (forgotten; `webfarm-agent cleanup` removes every failover address): %v",
				o.memory.HeldEpoch, ferr)
		}
		addr, err := heldAddressOf(o)
		if err != nil {
			return err
		}
		err = f.a.vips.Release(ctx, addr)
		if errors.Is(err, vip.ErrReleasing) {
			// Removed; forgotten at a later pass, once its hook is done.
			return nil
		}
		if err != nil {
			return fmt.Errorf("releasing %s: %w", o.object.Address, err)
		}
		logr.FromContextOrDiscard(ctx).Info("Removed the address of a FailoverIP that is gone or was recreated",
			"failoverIP", o.key, "uid", o.object.UID, "address", o.object.Address, "epoch", o.memory.HeldEpoch)
	}
	return f.memory.forget(o.key, o.object)
}

// heldAddressOf is the address a memory holds, as its object put it.
func heldAddressOf(o entry) (vip.Address, error) {
	ip, err := netip.ParseAddr(o.object.Address)
	if err != nil {
		return vip.Address{}, fmt.Errorf("remembered address %q of %s: %w", o.object.Address, o.key, err)
	}
	return vip.Address{IP: ip, Interface: o.object.Interface, FailoverIP: o.key, Epoch: o.memory.HeldEpoch}, nil
}

// acknowledge completes the reports of a pass: it names the object (UID)
// each report is about, and adds, for every FailoverIP whose ownership the
// controller took away from this node (owner empty, this node the previous
// owner, not yet acknowledged), that the address is not here at that epoch.
// The controller removes the finalizer of a deleted FailoverIP, or elects
// again after a conflict, only on that word or once this node must have
// fenced itself.
func (f *failover) acknowledge(snap *snapshot, reports []webfarmv1.NodeFailoverIPStatus) []webfarmv1.NodeFailoverIPStatus {
	for i := range reports {
		if fip := snap.failoverIPs[reports[i].Name]; fip != nil {
			reports[i].UID = fip.UID
		}
	}
	for _, key := range sortedKeys(snap.failoverIPs) {
		fip := snap.failoverIPs[key]
		st := fip.Status
		if st.Owner != "" || st.PreviousOwner != snap.node || st.PreviousOwnerReleased || st.Epoch <= 0 ||
			f.memory.get(key).Holding || slices.ContainsFunc(reports, func(r webfarmv1.NodeFailoverIPStatus) bool { return r.Name == key }) {
			continue
		}
		reports = append(reports, webfarmv1.NodeFailoverIPStatus{
			Name: key, UID: fip.UID, Epoch: st.Epoch, State: webfarmv1.VIPReleased,
			Message: fmt.Sprintf("ownership taken away at epoch %d: %s is not on this node", st.Epoch, fip.Spec.Address),
		})
	}
	return reports
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
