package failoversim

import "slices"

// The identity model: every node signs its peer datagrams with a key of its
// own (heartbeat.Identity), kept on its disk and published in its
// FrontNode's status.peerKeys by its agent alone (agent.writePeerKeys). A
// node signs only once its own view shows its key published, and a
// receiver accepts a sender's datagrams only with the key its view of the
// sender's FrontNode shows (heartbeat.Peers.SetPeerKeys): a node with a new
// key is heard once its write reached the API server and the receivers'
// watches brought it. Keys are numbers here; no two nodes ever share one.
//
// A farm starts with every key made and published, as a running cluster
// has them; an agent restart with its disk keeps its key, and one without
// makes a new key (a rebooted node: the key lives in the host's /run).

// initKeys gives every node its first key, published.
func (w *World) initKeys() {
	for _, a := range w.agents {
		a.ensureKey()
		w.api.st.fronts[a.idx].key = a.disk.key
	}
}

// ensureKey is heartbeat.LoadIdentity: the key on disk, or a new one.
func (a *agent) ensureKey() {
	if a.disk.key == 0 {
		a.w.keys++
		a.disk.key = a.w.keys
	}
}

// syncKey is agent.syncPeerIdentity's write: while the node's view shows
// another key than its own, it writes its own, once at a time, again after
// the client's timeout when the write is lost.
func (a *agent) syncKey() {
	if !a.have || a.view.fronts[a.idx].key == a.disk.key || a.keyWriting {
		return
	}
	a.keyWrites++
	n := a.keyWrites
	a.keyWriting = true
	key := a.disk.key
	a.w.net.call(agentParty(a.idx), func() func() {
		a.w.api.publishKey(a.idx, key)
		return a.proc(func() {
			if a.keyWrites == n {
				a.keyWriting = false
			}
		})
	})
	a.afterLocal(a.keepalive, func() {
		if a.keyWrites == n && a.keyWriting {
			a.keyWriting = false
			a.syncKey()
		}
	})
}

// signs tells whether the node signs its datagrams: its own view shows its
// key published (the agent sets the signer only then).
func (a *agent) signs() bool { return a.have && a.view.fronts[a.idx].key == a.disk.key }

// verifies tells whether d is signed by the key this node's view of its
// sender's FrontNode shows.
func (a *agent) verifies(d datagram) bool {
	return a.have && d.key != 0 && a.view.fronts[d.from].key == d.key
}

// publishKey stores a node's peer key in its FrontNode status; every agent
// watches FrontNodes.
func (a *apiServer) publishKey(node, key int) {
	a.w.tracef("API: %s publishes peer key %d", a.w.cfg.Nodes[node], key)
	a.rev++
	a.st.fronts = slices.Clone(a.st.fronts)
	a.st.fronts[node].key = key
	a.notify(true)
}
