package agent

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/webfarm/webfarm/agent/ownership"
	"github.com/webfarm/webfarm/agent/vip"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/metrics"
)

// Reasons of the agent's events.
const (
	// EventTookOver: the node holds and announces a failover address.
	EventTookOver = "TookOver"
	// EventReleased: the node removed a failover address for a hand-off.
	EventReleased = "Released"
	// EventFenced: the node removed a failover address it could no longer
	// prove it owned.
	EventFenced = "Fenced"
	// EventOwnerUnheard: the node, a voter of the epoch, stopped hearing
	// its owner for deadtime and will no longer vouch for it.
	EventOwnerUnheard = "OwnerUnheard"
	// EventConfigurationRefused: haproxy -c refused the node's
	// configuration; HAProxy keeps running the previous one.
	EventConfigurationRefused = "ConfigurationRefused"
	// EventDrainChainFailed: the drain chain could not be synced.
	EventDrainChainFailed = "DrainChainSyncFailed"

	eventAction = "Agent"
)

// observer turns what the agent's loops do into metrics and events, beside
// them rather than inside: it sees the reports they write, the FailoverIPs
// that name this node owner, and the announcements.
type observer struct {
	node   string
	clock  clock.PassiveClock
	cache  client.Reader
	events events.EventRecorder // nil: no events

	mu sync.Mutex
	// named is, per address, when this node first saw itself named owner
	// at an epoch, until its first announcement at that epoch.
	named map[netip.Addr]namedOwner
	// lastWarning is the last note of each node-level warning, so that a
	// problem that lasts is one event, not one per resync.
	lastWarning map[string]string
}

type namedOwner struct {
	epoch     int64
	at        time.Time
	announced bool
}

func newObserver(node string, clk clock.PassiveClock, cache client.Reader, rec events.EventRecorder) *observer {
	return &observer{node: node, clock: clk, cache: cache, events: rec,
		named: map[netip.Addr]namedOwner{}, lastWarning: map[string]string{}}
}

// failoverIPSeen notes when this node is first seen named owner of an
// address at an epoch: the start of its take-over.
func (o *observer) failoverIPSeen(obj any) {
	fip, ok := obj.(*webfarmv1.FailoverIP)
	if !ok {
		return
	}
	ip, err := netip.ParseAddr(fip.Spec.Address)
	if err != nil {
		return
	}
	ip = ip.Unmap()
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case fip.Status.Owner != o.node:
		delete(o.named, ip)
	case o.named[ip].epoch != fip.Status.Epoch:
		o.named[ip] = namedOwner{epoch: fip.Status.Epoch, at: o.clock.Now()}
	}
}

// announced counts an announcement and, for the first since the node was
// named owner, observes how long the take-over took on this node.
func (o *observer) announced(ip netip.Addr, err error) {
	family := "ipv4"
	if ip.Is6() && !ip.Is4In6() {
		family = "ipv6"
	}
	result := "sent"
	switch {
	case errors.Is(err, context.Canceled):
		// A release stopped the take-over.
		result = "stopped"
	case err != nil:
		result = "failed"
	}
	metrics.Announcements.WithLabelValues(family, result).Inc()
	if err != nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if n, ok := o.named[ip.Unmap()]; ok && !n.announced {
		metrics.TakeoverWait.Observe(o.clock.Since(n.at).Seconds())
		n.announced = true
		o.named[ip.Unmap()] = n
	}
}

// reported counts and records each failover IP whose reported state
// changed to Holding (a take-over), Released, Fenced or OwnerUnheard.
func (o *observer) reported(before, after []webfarmv1.NodeFailoverIPStatus) {
	was := make(map[string]webfarmv1.VIPState, len(before))
	for _, s := range before {
		was[s.Name] = s.State
	}
	for _, s := range after {
		if was[s.Name] == s.State {
			continue
		}
		reason, kind := transitionEvent(s.State)
		if reason == "" {
			continue
		}
		ns, name := splitKey(s.Name)
		metrics.FailoverTransitions.WithLabelValues(ns, name, string(s.State)).Inc()
		if s.State == webfarmv1.VIPFenced {
			metrics.Fences.WithLabelValues(ns, name, fenceCause(s.Reason)).Inc()
		}
		fip := &webfarmv1.FailoverIP{}
		if o.events != nil && o.cache.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, fip) == nil {
			o.events.Eventf(fip, nil, kind, reason, eventAction, "%s at epoch %d on %s%s", s.State, s.Epoch, o.node, suffix(s.Message))
		}
	}
}

// fenceCause is the cause a fence reports, as a label of a known value.
func fenceCause(reason string) string {
	switch ownership.FenceCause(reason) {
	case ownership.ProofExpired, ownership.NewerView, ownership.StatusRolledBack, ownership.Superseded,
		ownership.InvalidAddress, ownership.Unrecorded:
		return reason
	}
	return "Unknown"
}

func transitionEvent(state webfarmv1.VIPState) (reason, kind string) {
	switch state {
	case webfarmv1.VIPHolding:
		return EventTookOver, corev1.EventTypeNormal
	case webfarmv1.VIPReleased:
		return EventReleased, corev1.EventTypeNormal
	case webfarmv1.VIPFenced:
		return EventFenced, corev1.EventTypeWarning
	case webfarmv1.VIPOwnerUnheard:
		return EventOwnerUnheard, corev1.EventTypeWarning
	}
	return "", ""
}

// warn records a warning event on the node's FrontNode when its note
// differs from the last one of that reason; clear forgets it, so that the
// problem recurring is recorded again.
func (o *observer) warn(front *webfarmv1.FrontNode, reason, note string) {
	if o.events == nil || front == nil {
		return
	}
	o.mu.Lock()
	same := o.lastWarning[reason] == note
	o.lastWarning[reason] = note
	o.mu.Unlock()
	if !same {
		o.events.Eventf(front, nil, corev1.EventTypeWarning, reason, eventAction, "%s", note)
	}
}

func (o *observer) clear(reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.lastWarning, reason)
}

// observedAnnouncer tells the observer about every announcement.
type observedAnnouncer struct {
	next vip.Announcer
	seen func(netip.Addr, error)
}

func (a observedAnnouncer) Announce(ctx context.Context, link netlink.Link, ip netip.Addr) error {
	err := a.next.Announce(ctx, link, ip)
	a.seen(ip, err)
	return err
}

func splitKey(key string) (namespace, name string) {
	namespace, name, _ = strings.Cut(key, "/")
	return namespace, name
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}
