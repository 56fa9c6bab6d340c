// Package secretwatch tells the agent when a Secret it uses changes: a
// metadata-only watch of Secrets, one per namespace that holds one it
// wants, so that a renewed certificate reaches HAProxy at once rather
// than at the next resync. No Secret's data is sent or cached.
package secretwatch

import (
	"context"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

var secrets = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

// Watch calls Changed with a Secret's name whenever a Secret it wants is
// created, changed or deleted. Its methods are safe for concurrent use.
type Watch struct {
	// Client lists and watches the Secrets' metadata.
	Client metadata.Interface
	// Changed is called from the watch's goroutines; it must not block.
	Changed func(types.NamespacedName)

	mu         sync.Mutex
	wanted     map[types.NamespacedName]bool
	namespaces map[string]context.CancelFunc
}

// Want sets the Secrets to watch, watching their namespaces until ctx is
// done or no wanted Secret is left in them.
func (w *Watch) Want(ctx context.Context, names []types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.wanted = make(map[types.NamespacedName]bool, len(names))
	need := map[string]bool{}
	for _, n := range names {
		w.wanted[n], need[n.Namespace] = true, true
	}
	if w.namespaces == nil {
		w.namespaces = map[string]context.CancelFunc{}
	}
	for ns, stop := range w.namespaces {
		if !need[ns] {
			stop()
			delete(w.namespaces, ns)
		}
	}
	for ns := range need {
		if _, watching := w.namespaces[ns]; !watching {
			w.namespaces[ns] = w.start(ctx, ns)
		}
	}
}

// Stop ends every watch.
func (w *Watch) Stop() { w.Want(context.Background(), nil) }

// start watches the Secrets of one namespace. The initial list is not a
// change; but a Secret may have changed between the caller's read and the
// list, so every wanted Secret of the namespace is reported once the
// watch is up.
func (w *Watch) start(ctx context.Context, namespace string) context.CancelFunc {
	ctx, cancel := context.WithCancel(ctx)
	informer := metadatainformer.NewFilteredMetadataInformer(w.Client, secrets, namespace, 0, cache.Indexers{}, nil).Informer()
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if !initial {
				w.seen(obj)
			}
		},
		UpdateFunc: func(_, obj any) { w.seen(obj) },
		DeleteFunc: w.seen,
	})
	go informer.RunWithContext(ctx)
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
			w.changedIn(namespace)
		}
	}()
	return cancel
}

func (w *Watch) changedIn(namespace string) {
	w.mu.Lock()
	var names []types.NamespacedName
	for n := range w.wanted {
		if n.Namespace == namespace {
			names = append(names, n)
		}
	}
	w.mu.Unlock()
	for _, n := range names {
		w.Changed(n)
	}
}

func (w *Watch) seen(obj any) {
	if gone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = gone.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	name := types.NamespacedName{Namespace: m.GetNamespace(), Name: m.GetName()}
	w.mu.Lock()
	wanted := w.wanted[name]
	w.mu.Unlock()
	if wanted {
		w.Changed(name)
	}
}
