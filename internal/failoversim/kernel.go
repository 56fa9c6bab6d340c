package failoversim

import "time"

// kernel is what one node's kernel does for the address: it is on the link
// or not, and, with the dead-man gate, it is answered for only until the
// gate expires unless the agent refreshes it. The gate is the one the
// agent gets in parallel work (issue 9, item 2): each Hold decided at t
// with RecheckAfter g opens it until t+g by the node's clock. The address
// and the gate outlive the agent process; a power loss takes both.
type kernel struct {
	addr bool
	// gateUntil is the global instant the gate closes.
	gateUntil int64
}

// hold adds the address and opens the gate until local instant until.
func (k *kernel) hold(a *agent, until time.Time) {
	at := a.clk.globalAt(until)
	if k.addr && k.gateUntil == at {
		return
	}
	k.addr, k.gateUntil = true, at
	w := a.w
	// An event at the expiry, so that the checker looks at that instant.
	w.at(at, "", func() {
		if k.addr && k.gateUntil == at && w.cfg.Gate {
			w.tracef("%s: gate expires", a.name)
		}
	})
}

func (k *kernel) release() { k.addr = false }

// answering tells whether the node answers for the address at global now.
func (k *kernel) answering(gate bool, now int64) bool {
	return k.addr && (!gate || now < k.gateUntil)
}
