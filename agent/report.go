package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// report is the part of a FrontNode's status that belongs to the node's agent
// (see docs/architecture.md); the controller writes the rest.
type report struct {
	Proxy        webfarmv1.ProxyStatus
	Servers      []webfarmv1.ServerStatus
	FailoverIPs  []webfarmv1.NodeFailoverIPStatus
	ShuttingDown bool
	Serving      []webfarmv1.ServingStatus
	// UnheardFronts are the heartbeat targets unheard for a deadtime.
	UnheardFronts []string
	// PeerKeys are the node's own peer keys (heartbeat.Identity.Published).
	PeerKeys []string
	// Sites are the Sites HAProxy serves here.
	Sites []webfarmv1.NodeSiteStatus
	// Checks are the health checks of standalone FailoverIPs.
	Checks []webfarmv1.NodeChecksStatus
	// Hooks are the last notify hook of each FailoverIP.
	Hooks []webfarmv1.HookRun
	// Uploads are the declared directories' sync.
	Uploads []webfarmv1.NodeUploadsStatus
}

// reporter publishes the agent's report with a JSON merge patch that carries
// only the agent's keys, so it never overwrites the controller's. It skips
// writes that would change nothing, and tries again after a failure.
type reporter struct {
	client client.Client
	node   string
	// observe, when set, is told how each update changed the failover
	// IPs' reports (metrics and events).
	observe func(before, after []webfarmv1.NodeFailoverIPStatus)

	mu        sync.Mutex
	current   report
	published *report
}

// update changes the report with fn; publish sends it.
func (r *reporter) update(fn func(*report)) {
	r.mu.Lock()
	before := r.current.FailoverIPs
	fn(&r.current)
	after := r.current.FailoverIPs
	r.mu.Unlock()
	if r.observe != nil {
		r.observe(before, after)
	}
}

// publish writes the report if it differs from the last one written.
func (r *reporter) publish(ctx context.Context) error {
	r.mu.Lock()
	want := r.current
	want.Servers = append([]webfarmv1.ServerStatus(nil), want.Servers...)
	want.FailoverIPs = append([]webfarmv1.NodeFailoverIPStatus(nil), want.FailoverIPs...)
	want.Serving = append([]webfarmv1.ServingStatus(nil), want.Serving...)
	want.UnheardFronts = slices.Clone(want.UnheardFronts)
	want.PeerKeys = slices.Clone(want.PeerKeys)
	want.Sites = slices.Clone(want.Sites)
	want.Checks = slices.Clone(want.Checks)
	want.Hooks = slices.Clone(want.Hooks)
	want.Uploads = slices.Clone(want.Uploads)
	unchanged := r.published != nil && reflect.DeepEqual(*r.published, want)
	r.mu.Unlock()
	if unchanged {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{
		"proxy":        want.Proxy,
		"servers":      want.Servers,
		"failoverIPs":  want.FailoverIPs,
		"shuttingDown": want.ShuttingDown,
		"serving":      want.Serving,
		// null, not an empty list, removes the key when all are heard.
		"unheardFronts": want.UnheardFronts,
		"peerKeys":      want.PeerKeys,
		"sites":         want.Sites,
		"checks":        want.Checks,
		"hooks":         want.Hooks,
		"uploads":       want.Uploads,
	}})
	if err != nil {
		return err
	}
	front := &webfarmv1.FrontNode{}
	front.Name = r.node
	if err := r.client.Status().Patch(ctx, front, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("patching status of FrontNode %s: %w", r.node, err)
	}
	r.mu.Lock()
	r.published = &want
	r.mu.Unlock()
	return nil
}

// verify makes the next publish write the report again when the FrontNode
// in the cache does not carry what was published: it was recreated, or
// someone else changed the agent's keys.
func (r *reporter) verify(self *webfarmv1.FrontNode) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.published != nil && (self == nil || !sameReport(reportOf(&self.Status), *r.published)) {
		r.published = nil
	}
}

func reportOf(s *webfarmv1.FrontNodeStatus) report {
	return report{Proxy: s.Proxy, Servers: s.Servers, FailoverIPs: s.FailoverIPs, ShuttingDown: s.ShuttingDown, Serving: s.Serving, Sites: s.Sites,
		Checks: s.Checks, Hooks: s.Hooks, Uploads: s.Uploads, PeerKeys: s.PeerKeys}
}

// sameReport compares two reports as the API server stores them: times to
// the second, empty lists as none.
func sameReport(a, b report) bool {
	norm := func(r report) report {
		r.Proxy.LastReloadTime = storedTime(r.Proxy.LastReloadTime)
		if len(r.Servers) == 0 {
			r.Servers = nil
		}
		if len(r.FailoverIPs) == 0 {
			r.FailoverIPs = nil
		}
		r.Serving = slices.Clone(r.Serving)
		for i := range r.Serving {
			r.Serving[i].LastTransitionTime = storedTime(r.Serving[i].LastTransitionTime)
		}
		if len(r.Serving) == 0 {
			r.Serving = nil
		}
		if len(r.PeerKeys) == 0 {
			r.PeerKeys = nil
		}
		if len(r.Sites) == 0 {
			r.Sites = nil
		}
		r.Checks = storedChecks(r.Checks)
		r.Hooks = storedHooks(r.Hooks)
		r.Uploads = storedUploads(r.Uploads)
		return r
	}
	return equality.Semantic.DeepEqual(norm(a), norm(b))
}

// storedTime is t as the API server stores it: to the second, in UTC.
func storedTime(t *metav1.Time) *metav1.Time {
	if t == nil {
		return nil
	}
	return &metav1.Time{Time: t.Truncate(time.Second).UTC()}
}

// storedChecks is checks as the API server stores them.
func storedChecks(checks []webfarmv1.NodeChecksStatus) []webfarmv1.NodeChecksStatus {
	if len(checks) == 0 {
		return nil
	}
	out := make([]webfarmv1.NodeChecksStatus, len(checks))
	for i, c := range checks {
		out[i] = c
		out[i].Checks = slices.Clone(c.Checks)
		for j := range out[i].Checks {
			out[i].Checks[j].LastTransitionTime = storedTime(out[i].Checks[j].LastTransitionTime)
		}
	}
	return out
}

// storedHooks is hooks as the API server stores them.
func storedHooks(hooks []webfarmv1.HookRun) []webfarmv1.HookRun {
	return storedEach(hooks, func(h *webfarmv1.HookRun) **metav1.Time { return &h.FinishedTime })
}

// storedUploads is uploads as the API server stores them.
func storedUploads(uploads []webfarmv1.NodeUploadsStatus) []webfarmv1.NodeUploadsStatus {
	return storedEach(uploads, func(u *webfarmv1.NodeUploadsStatus) **metav1.Time { return &u.OldestPendingTime })
}

// storedEach is list, none when empty, with the time at(item) of each item
// as the API server stores it.
func storedEach[T any](list []T, at func(*T) **metav1.Time) []T {
	if len(list) == 0 {
		return nil
	}
	out := slices.Clone(list)
	for i := range out {
		t := at(&out[i])
		*t = storedTime(*t)
	}
	return out
}
