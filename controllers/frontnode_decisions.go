package controllers

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

const (
	// defaultDeadtime judges the heartbeat of a front that is a candidate for
	// no FailoverIP; it is the API's default deadtime.
	defaultDeadtime = 2 * time.Second
	// heartbeatReportInterval is how stale status.lastHeartbeatTime may get
	// while the phase holds. The controller judges liveness from memory;
	// writing every renewal would double the API writes of heartbeats.
	heartbeatReportInterval = 5 * time.Minute
	// cookieBytes of randomness make a 16-character hex cookie.
	cookieBytes = 8
)

// farmKey names a WebFarm in FrontNode.spec.farms and in HAProxy stats.
func farmKey(namespace, name string) string { return namespace + "/" + name }

// parseDrain reads the drain annotation. Anything but "true" keeps the front
// serving; valid is false when the annotation is set to something other than
// "true" or "false" (even empty), so that the caller reports it — never
// guess what was meant.
func parseDrain(annotations map[string]string) (drain, valid bool) {
	v, ok := annotations[webfarmv1.DrainAnnotation]
	switch {
	case !ok, v == "false":
		return false, true
	case v == "true":
		return true, true
	default:
		return false, false
	}
}

// nodeAddress is the address of a front: the Node's first InternalIP, else
// its first address of any type that is an IP ("" when it has none).
func nodeAddress(node *corev1.Node) string {
	var first string
	for _, a := range node.Status.Addresses {
		ip, err := netip.ParseAddr(a.Address)
		if err != nil || ip.Zone() != "" {
			continue
		}
		if a.Type == corev1.NodeInternalIP {
			return ip.String()
		}
		if first == "" {
			first = ip.String()
		}
	}
	return first
}

// selectingFarms returns, sorted, the keys of the farms whose frontSelector
// matches the node's labels. A farm with an invalid selector selects nothing
// (its own status says why).
func selectingFarms(farms []webfarmv1.WebFarm, nodeLabels map[string]string) []string {
	var keys []string
	for i := range farms {
		sel, err := metav1.LabelSelectorAsSelector(&farms[i].Spec.FrontSelector)
		if err != nil || !sel.Matches(labels.Set(nodeLabels)) {
			continue
		}
		keys = append(keys, farmKey(farms[i].Namespace, farms[i].Name))
	}
	slices.Sort(keys)
	return keys
}

// newCookie returns a random cookie value: it names a front to clients
// without revealing anything about the host.
func newCookie() (string, error) {
	b := make([]byte, cookieBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes for a cookie: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// frontDeadtime is the smallest deadtime of the FailoverIPs a front may
// hold; its presence window counts from it (webfarmv1.PresenceWindow).
func frontDeadtime(fips []webfarmv1.FailoverIP) time.Duration {
	d := time.Duration(0)
	for i := range fips {
		if dt := fips[i].Spec.Deadtime.Duration; dt > 0 && (d == 0 || dt < d) {
			d = dt
		}
	}
	if d == 0 {
		return defaultDeadtime
	}
	return d
}

// farmProxies are the proxies that serve one farm's clients: the owners of
// its FailoverIPs, or every front of the farm when it has none.
type farmProxies struct {
	farm    string
	proxies []*webfarmv1.FrontNode
}

// frontSessions sums the sessions that the active proxies of every farm
// report on front's main and backup servers (agents count them only while
// the front drains). reported is true when, for every farm, some active
// proxy reports a count for the front's servers: only then does zero mean
// "no session left".
func frontSessions(front string, farms []farmProxies) (sessions int32, reported bool) {
	reported = true
	for _, fp := range farms {
		seen := false
		for _, p := range fp.proxies {
			for _, s := range p.Status.Servers {
				if s.Farm == fp.farm && s.Front == front && s.Sessions != nil {
					sessions += *s.Sessions
					seen = true
				}
			}
		}
		reported = reported && seen
	}
	return sessions, reported
}

// drainSessions is the sessions count to show: while a drain is requested
// and the active proxies report one; none otherwise.
func drainSessions(drainRequested bool, sessions int32, reported bool) *int32 {
	if !drainRequested || !reported {
		return nil
	}
	return &sessions
}

// frontPhase is where a front stands: Down when its heartbeat is stale,
// Active unless a drain is requested, Drained once the active proxies report
// no session on it, Draining until then.
func frontPhase(fresh, drainRequested bool, sessions int32, reported bool) webfarmv1.FrontPhase {
	switch {
	case !fresh:
		return webfarmv1.FrontDown
	case !drainRequested:
		return webfarmv1.FrontActive
	case reported && sessions == 0:
		return webfarmv1.FrontDrained
	default:
		return webfarmv1.FrontDraining
	}
}

// reportedHeartbeat is the lastHeartbeatTime to write: refreshed when the
// phase changes or when the recorded one is heartbeatReportInterval behind,
// kept otherwise, so that steady heartbeats cost no API write.
func reportedHeartbeat(recorded *metav1.Time, hb heartbeat, phaseChanged bool) *metav1.Time {
	if !hb.heard {
		return recorded
	}
	if recorded == nil || phaseChanged || hb.lastAlive.Sub(recorded.Time) >= heartbeatReportInterval {
		t := metav1.NewTime(hb.lastAlive.Truncate(time.Second))
		return &t
	}
	return recorded
}

// frontConditions returns the FrontNode's conditions: Ready from its phase,
// ProxyHealthy from what its agent reports.
func frontConditions(existing []metav1.Condition, phase webfarmv1.FrontPhase, proxy webfarmv1.ProxyStatus, generation int64, now time.Time) []metav1.Condition {
	conds := slices.Clone(existing)
	ready := metav1.Condition{Type: webfarmv1.ConditionReady, Status: metav1.ConditionFalse}
	switch phase {
	case webfarmv1.FrontActive:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, webfarmv1.ReasonServing, "The front takes new clients"
	case webfarmv1.FrontDraining:
		ready.Reason, ready.Message = webfarmv1.ReasonDrainRequested, "Drain requested: no new clients; sessions holding its cookie finish"
	case webfarmv1.FrontDrained:
		ready.Reason, ready.Message = webfarmv1.ReasonDrained, "Drained: no session left on the active proxies; safe to stop for maintenance"
	default:
		ready.Reason, ready.Message = webfarmv1.ReasonHeartbeatExpired, "The node's heartbeat Lease is not renewed: check its webfarm-agent"
	}
	setCondition(&conds, ready, generation, now)
	setCondition(&conds, proxyCondition(proxy), generation, now)
	return conds
}

func proxyCondition(proxy webfarmv1.ProxyStatus) metav1.Condition {
	c := metav1.Condition{Type: ConditionProxyHealthy}
	switch {
	case proxy.Healthy:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, webfarmv1.ReasonConfigApplied, "HAProxy runs the wanted configuration"
	case proxy.ConfigHash == "" && proxy.LastReloadTime == nil && proxy.Message == "":
		c.Status, c.Reason, c.Message = metav1.ConditionUnknown, ReasonAwaitingAgent, "The node's webfarm-agent has not reported its HAProxy yet"
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonProxyUnhealthy, proxy.Message
		if c.Message == "" {
			c.Message = "The node's webfarm-agent reports HAProxy unhealthy"
		}
	}
	return c
}

// setCondition sets c, stamped with generation, keeping its transition time
// unless its status changes.
func setCondition(conds *[]metav1.Condition, c metav1.Condition, generation int64, now time.Time) {
	c.ObservedGeneration = generation
	c.LastTransitionTime = metav1.NewTime(now.Truncate(time.Second))
	meta.SetStatusCondition(conds, c)
}

// controllerFrontStatus is the part of FrontNode status the controller owns.
// Marshalled under "status", it is a JSON merge patch that leaves the agent's
// keys alone.
type controllerFrontStatus struct {
	ObservedGeneration int64                `json:"observedGeneration"`
	Phase              webfarmv1.FrontPhase `json:"phase"`
	LastHeartbeatTime  *metav1.Time         `json:"lastHeartbeatTime"`
	// Sessions is set while the front drains; null removes the key.
	Sessions   *int32             `json:"sessions"`
	Conditions []metav1.Condition `json:"conditions"`
}

func controllerStatusOf(s webfarmv1.FrontNodeStatus) controllerFrontStatus {
	return controllerFrontStatus{
		ObservedGeneration: s.ObservedGeneration,
		Phase:              s.Phase,
		LastHeartbeatTime:  s.LastHeartbeatTime,
		Sessions:           s.Sessions,
		Conditions:         s.Conditions,
	}
}

func (s controllerFrontStatus) equal(o controllerFrontStatus) bool {
	return equality.Semantic.DeepEqual(s, o)
}

// reportsAwaited tells whether some FailoverIP's status names node
// (nodesOf): its agent's reports, written in its FrontNode's status, may
// still be needed. Without them a withdrawal is proven only by the
// holder's silence, which a live agent never falls into, so a deleted
// FailoverIP would wait forever. The FrontNode stays, even once no farm
// selects the node, as when an uninstall deletes the farms and the
// FailoverIPs together.
func reportsAwaited(fips []webfarmv1.FailoverIP, node string) bool {
	return slices.ContainsFunc(fips, func(fip webfarmv1.FailoverIP) bool {
		return slices.Contains(nodesOf(fip.Status), node)
	})
}
