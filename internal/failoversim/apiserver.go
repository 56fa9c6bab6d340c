package failoversim

import (
	"slices"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/webfarm/webfarm/agent/ownership"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/controllers"
)

// fipStatus is the part of the FailoverIP status the protocol reads.
type fipStatus struct {
	controllers.Ownership
	Candidates, Voters []string
	OwnerRenewal       string
	// AgentTiming is the timing published for the agents (status.timing)
	// and TimingGeneration the spec generation it comes from; 0 while the
	// controller has published none.
	AgentTiming      ownership.Timing
	TimingGeneration int64
	// Witness is the owner's last witness (status.ownerWitness); nil when
	// none.
	Witness *webfarmv1.OwnerWitness
	// WitnessCounted is status.ownerWitnessCounted: the controller that
	// wrote the status counts witnesses.
	WitnessCounted bool
}

func (s fipStatus) equal(o fipStatus) bool {
	return s.Ownership == o.Ownership && slices.Equal(s.Candidates, o.Candidates) && slices.Equal(s.Voters, o.Voters) && s.OwnerRenewal == o.OwnerRenewal &&
		s.AgentTiming == o.AgentTiming && s.TimingGeneration == o.TimingGeneration && sameWitness(s.Witness, o.Witness) && s.WitnessCounted == o.WitnessCounted
}

func sameWitness(a, b *webfarmv1.OwnerWitness) bool {
	return a == b || (a != nil && b != nil && *a == *b)
}

// timing is what ownership.TimingOf reads of a FailoverIP with this status
// and spec: the timing the agents act on and its generation.
func (s fipStatus) timing(spec fipSpec) (ownership.Timing, int64) {
	fip := &webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Generation: spec.Generation}, Spec: webfarmv1.FailoverIPSpec{
		Keepalive: duration(spec.Timing.Keepalive), Deadtime: duration(spec.Timing.Deadtime), Guard: duration(spec.Timing.Guard)}}
	if s.TimingGeneration > 0 {
		fip.Status.Timing = &webfarmv1.AgentTiming{Keepalive: duration(s.AgentTiming.Keepalive), Deadtime: duration(s.AgentTiming.Deadtime),
			Guard: duration(s.AgentTiming.Guard), Generation: s.TimingGeneration}
	}
	return ownership.TimingOf(fip)
}

// publishTiming is the controller's publishTiming: the spec's timing for
// the agents, and a fencing timing raised to cover it in the same write.
func (s *fipStatus) publishTiming(spec fipSpec) {
	s.AgentTiming, s.TimingGeneration = spec.Timing, spec.Generation
	s.Timing = s.Timing.AtLeast(controllers.Timing{Deadtime: spec.Timing.Deadtime, Guard: spec.Timing.Guard})
}

func duration(d time.Duration) metav1.Duration { return metav1.Duration{Duration: d} }

// forAgent is the status as ownership.StatusOf reads it.
func (s fipStatus) forAgent() ownership.Status {
	return ownership.Status{
		Owner: s.Owner, Epoch: s.Epoch, PreviousOwner: s.PreviousOwner,
		PreviousOwnerReleased: s.PreviousOwnerReleased, ReleaseRequested: s.ReleaseRequested,
		Candidates: s.Candidates, Voters: s.Voters, FencingDeadtime: s.Timing.Deadtime,
	}
}

// fipSpec is the part of the FailoverIP spec the protocol reads.
type fipSpec struct {
	Timing        ownership.Timing
	PreferredNode string
	AutoFailback  bool
	Generation    int64
}

// lease is a node's Lease: its resourceVersion (0: never written) and
// holderIdentity.
type lease struct {
	rv     int64
	holder string
}

// report is what an agent reports of the FailoverIP in its FrontNode
// status; none when it reports nothing.
type report struct {
	some  bool
	epoch int64
	state webfarmv1.VIPState
	// generation is the spec generation decided on (ObservedGeneration).
	generation int64
	// unheardAfter is the deadtime waited before OwnerUnheard.
	unheardAfter time.Duration
	// unheard has bit i set when front i is unheard for a deadtime
	// (unheardFronts), so that a report compares with ==.
	unheard uint64
}

// front is the part of a FrontNode the election reads.
type front struct {
	draining bool
	report   report
	// key is the node's published peer key (identity.go); 0: none.
	key int
	// outOfService: an operator tainted the node out of service, as
	// docs/failover-safety.md tells them to once it is shut down.
	outOfService bool
}

// apiState is everything an observer can list. Its slices are never
// changed in place, so that a snapshot can share them.
type apiState struct {
	fipRV  int64
	spec   fipSpec
	status fipStatus
	leases []lease
	fronts []front
	// timed: timing and generation hold status.timing(spec), worked out
	// once per snapshot, which every observer shares and nobody changes.
	timed      bool
	timing     ownership.Timing
	generation int64
}

// agentTiming is s.status.timing(s.spec), worked out once.
func (s *apiState) agentTiming() (ownership.Timing, int64) {
	if !s.timed {
		s.timing, s.generation = s.status.timing(s.spec)
		s.timed = true
	}
	return s.timing, s.generation
}

// observer is a party that watches the API server. A snapshot is shared by
// every observer it goes to: they read it only.
type observer interface {
	watch(s *apiState)
}

// apiServer is the API server and etcd: one revision counter, a
// compare-and-swap on the FailoverIP's resourceVersion for status writes,
// and a watch stream to every observer. Agents watch the FailoverIP and the
// FrontNodes, not the Leases; the controller watches everything. An
// observer whose stream broke lists again once it is connected.
type apiServer struct {
	w   *World
	st  apiState
	rev int64
	// observers and stale are indexed by party.
	observers []observer
	stale     []bool
	// leaseWrites counts each node's Lease renewals (the quiet API).
	leaseWrites []int
}

func newAPIServer(w *World, cfg Config) *apiServer {
	n := len(cfg.Nodes)
	return &apiServer{
		w: w,
		st: apiState{
			spec:   fipSpec{Timing: cfg.Timing, PreferredNode: cfg.PreferredNode, AutoFailback: cfg.AutoFailback, Generation: 1},
			leases: make([]lease, n),
			fronts: make([]front, n),
		},
		rev:         1,
		observers:   make([]observer, 2+n),
		stale:       make([]bool, 2+n),
		leaseWrites: make([]int, n),
	}
}

// list sends party its first snapshot, now or once it is connected.
func (a *apiServer) list(party int, o observer) {
	a.observers[party] = o
	a.send(party)
}

func (a *apiServer) send(party int) { a.sendSnapshot(party, a.snapshot()) }

// snapshot is the state as it is now, for observers to share.
func (a *apiServer) snapshot() *apiState {
	s := new(apiState)
	*s = a.st
	s.timed = false
	return s
}

// sendSnapshot sends s down party's watch stream, in order after the
// messages before it (network.stream).
func (a *apiServer) sendSnapshot(party int, s *apiState) {
	n := a.w.net
	if !n.connected(apiParty, party) {
		a.stale[party] = true
		return
	}
	a.stale[party] = false
	n.w.queue.push(n.inOrder(apiParty, party), event{r: &watchEvent{api: a, party: party, o: a.observers[party], s: s}})
}

// resync lists again to every observer whose stream broke and is whole now.
func (a *apiServer) resync() {
	for p, stale := range a.stale {
		if stale && a.observers[p] != nil && a.w.net.connected(apiParty, p) {
			a.send(p)
		}
	}
}

// notify sends the new state to the controller, and to the agents when
// what they watch changed: the FailoverIP or a FrontNode.
func (a *apiServer) notify(watched bool) {
	s := a.snapshot()
	for p, o := range a.observers {
		if o != nil && (p == ctrlParty || watched) {
			a.sendSnapshot(p, s)
		}
	}
}

// writeLease stores a renewal and returns its version (the resourceVersion
// stands for the renewTime).
func (a *apiServer) writeLease(node int, holder string) string {
	a.rev++
	a.leaseWrites[node]++
	a.st.leases = slices.Clone(a.st.leases)
	a.st.leases[node] = lease{rv: a.rev, holder: holder}
	a.notify(false)
	return strconv.FormatInt(a.rev, 10)
}

// updateStatus replaces the status if the FailoverIP is still at rv.
func (a *apiServer) updateStatus(rv int64, want fipStatus) bool {
	if rv != a.st.fipRV {
		return false
	}
	a.rev++
	a.st.fipRV, a.st.status = a.rev, want
	a.notify(true)
	return true
}

// writeWitness is the owner's witness (agent/witness): a JSON patch that
// lands only while the status names node owner at epoch and says that its
// controller counts witnesses, and changes nothing else.
func (a *apiServer) writeWitness(node string, epoch int64) bool {
	if a.st.status.Owner != node || a.st.status.Epoch != epoch || !a.st.status.WitnessCounted {
		return false
	}
	a.rev++
	a.st.fipRV = a.rev
	a.st.status.Witness = &webfarmv1.OwnerWitness{Node: node, Epoch: epoch, Renewal: strconv.FormatInt(a.rev, 10)}
	a.notify(true)
	return true
}

func (a *apiServer) patchReport(node int, r report) {
	if a.w.cfg.Trace {
		a.w.tracef("API: %s reports %s at epoch %d", a.w.cfg.Nodes[node], r.state, r.epoch)
	}
	a.rev++
	a.st.fronts = slices.Clone(a.st.fronts)
	a.st.fronts[node].report = r
	a.notify(true)
}

// setOutOfService is an operator's node.kubernetes.io/out-of-service
// taint on a node known to be shut down.
func (a *apiServer) setOutOfService(node int) {
	a.rev++
	a.st.fronts = slices.Clone(a.st.fronts)
	a.st.fronts[node].outOfService = true
	a.notify(true)
}

// setDraining is the drain annotation, mirrored into the FrontNode.
func (a *apiServer) setDraining(node int, draining bool) {
	a.rev++
	a.st.fronts = slices.Clone(a.st.fronts)
	a.st.fronts[node].draining = draining
	a.notify(true)
}

// setTiming is a user's edit of the FailoverIP's timings.
func (a *apiServer) setTiming(t ownership.Timing) {
	a.rev++
	a.st.fipRV = a.rev
	a.st.spec.Timing = t
	a.st.spec.Generation++
	a.notify(true)
}
