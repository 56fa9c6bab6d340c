package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/clientcmd"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
	"github.com/webfarm/webfarm/internal/testenv"
)

// The scenarios time hand-offs and losses from watches, not from kubectl
// run in a loop: on 2 loaded cores, ten kubectl processes a second were a
// load of their own, slowed the very controller and agents they timed, and
// sampled too coarsely to order a hand-off and a pod's end.

// ownerChange is a status.owner of the sample FailoverIP and when the watch
// saw it.
type ownerChange struct {
	at    time.Time
	owner string
	epoch int64
}

// events records what a watch saw, in order, until it is stopped.
type events struct {
	mu      sync.Mutex
	owners  []ownerChange
	deleted map[string]time.Time // pod name: when its deletion was seen
	cancel  context.CancelFunc
	done    sync.WaitGroup
}

// watchClient is a client of the cluster that can watch.
func (c *cluster) watchClient(t *testing.T) crclient.WithWatch {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		t.Fatalf("reading %s: %v", c.kubeconfig, err)
	}
	// Its client logs nothing the test needs; said once, it stops the
	// warning that no logger was set.
	crlog.SetLogger(logr.Discard())
	cl, err := crclient.NewWithWatch(cfg, crclient.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatalf("a client of the cluster: %v", err)
	}
	return cl
}

// watchEvents follows, until stop, the owner of the sample FailoverIP and the
// deletions of the pods of component ("" for none).
func (c *cluster) watchEvents(t *testing.T, component string) *events {
	cl := c.watchClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	e := &events{deleted: map[string]time.Time{}, cancel: cancel}
	t.Cleanup(e.stop)
	e.done.Add(1)
	go func() {
		defer e.done.Done()
		follow(ctx, cl, &webfarmv1.FailoverIPList{}, []crclient.ListOption{crclient.InNamespace(namespace),
			crclient.MatchingFields{"metadata.name": "failover"}}, e.onFailoverIP)
	}()
	if component != "" {
		e.done.Add(1)
		go func() {
			defer e.done.Done()
			follow(ctx, cl, &corev1.PodList{}, []crclient.ListOption{crclient.InNamespace(namespace),
				crclient.MatchingLabels{"app.kubernetes.io/component": component}}, e.onPod)
		}()
	}
	return e
}

func (e *events) onFailoverIP(_ watch.EventType, obj crclient.Object) {
	fip, ok := obj.(*webfarmv1.FailoverIP)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if n := len(e.owners); n > 0 && e.owners[n-1].owner == fip.Status.Owner && e.owners[n-1].epoch == fip.Status.Epoch {
		return
	}
	e.owners = append(e.owners, ownerChange{at: time.Now(), owner: fip.Status.Owner, epoch: fip.Status.Epoch})
}

func (e *events) onPod(typ watch.EventType, obj crclient.Object) {
	if typ != watch.Deleted {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, seen := e.deleted[obj.GetName()]; !seen {
		e.deleted[obj.GetName()] = time.Now()
	}
}

func (e *events) stop() {
	e.cancel()
	e.done.Wait()
}

// owner is the last owner the watch saw.
func (e *events) owner() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.owners) == 0 {
		return ""
	}
	return e.owners[len(e.owners)-1].owner
}

// movedFrom is when the watch first saw an owner other than from, and none.
func (e *events) movedFrom(from string) (time.Time, string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, o := range e.owners {
		if o.owner != from && o.owner != "" {
			return o.at, o.owner, true
		}
	}
	return time.Time{}, "", false
}

// podDeleted is when the watch saw the pod's deletion, zero if not yet.
func (e *events) podDeleted(pod string) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.deleted[pod]
}

// history is the owners seen since start, as "+1.234s wfc-node2@5" steps.
func (e *events) history(start time.Time) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var steps []string
	for _, o := range e.owners {
		owner := o.owner
		if owner == "" {
			owner = "(none)"
		}
		steps = append(steps, fmt.Sprintf("+%s %s@%d", o.at.Sub(start).Round(time.Millisecond), owner, o.epoch))
	}
	return steps
}

// follow lists the objects and then watches them from that list's version,
// calling on for each, again after a watch ends (a timeout, a restart of the
// API server), until ctx is done.
func follow(ctx context.Context, cl crclient.WithWatch, list crclient.ObjectList, opts []crclient.ListOption, on func(watch.EventType, crclient.Object)) {
	for ctx.Err() == nil {
		if err := followOnce(ctx, cl, list, opts, on); err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

func followOnce(ctx context.Context, cl crclient.WithWatch, list crclient.ObjectList, opts []crclient.ListOption, on func(watch.EventType, crclient.Object)) error {
	if err := cl.List(ctx, list, opts...); err != nil {
		return err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return err
	}
	for _, o := range items {
		if o, ok := o.(crclient.Object); ok {
			on(watch.Added, o)
		}
	}
	raw := &metav1.ListOptions{ResourceVersion: list.GetResourceVersion()}
	w, err := cl.Watch(ctx, list, append(opts, &crclient.ListOptions{Raw: raw})...)
	if err != nil {
		return err
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if o, ok := ev.Object.(crclient.Object); ok && ev.Type != watch.Error && ev.Type != watch.Bookmark {
			on(ev.Type, o)
		}
	}
	return nil
}
