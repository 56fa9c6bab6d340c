package controllers

import (
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// maxSuperseded bounds the resourceVersions remembered per object; a cache
// further behind than that is read as it is, and its write fails as a
// conflict, as it would without this record.
const maxSuperseded = 8

// written remembers, per object, the version the controller last wrote
// and the resourceVersions that its writes replaced. A reconcile that
// follows a write often reads, from the cache, the version the write
// replaced: the watch has not delivered the write yet. Its own write would
// then fail as a conflict, be logged as an error and retried after a
// backoff, although nobody else wrote. Reading the version written
// instead is as safe as reading an up-to-date cache: the API server held
// it, and a write based on it still fails if anyone wrote since.
type written[T client.Object] struct {
	mu   sync.Mutex
	last map[types.NamespacedName]writtenVersion[T]
}

type writtenVersion[T client.Object] struct {
	obj T
	// superseded are the resourceVersions that obj's writes replaced,
	// oldest first.
	superseded []string
}

func newWritten[T client.Object]() *written[T] {
	return &written[T]{last: map[types.NamespacedName]writtenVersion[T]{}}
}

// fresher returns what was last written of cached's object when cached
// is a version that write replaced, else cached, forgetting the record
// once the cache has moved past it.
func (w *written[T]) fresher(cached T) T {
	key := client.ObjectKeyFromObject(cached)
	w.mu.Lock()
	defer w.mu.Unlock()
	v, ok := w.last[key]
	if !ok {
		return cached
	}
	if v.obj.GetUID() == cached.GetUID() && slices.Contains(v.superseded, cached.GetResourceVersion()) {
		return v.obj.DeepCopyObject().(T)
	}
	delete(w.last, key)
	return cached
}

// record notes that obj, as the API server returned it, was written over
// resourceVersion from.
func (w *written[T]) record(from string, obj T) {
	key := client.ObjectKeyFromObject(obj)
	w.mu.Lock()
	defer w.mu.Unlock()
	superseded := []string{from}
	if v, ok := w.last[key]; ok && v.obj.GetUID() == obj.GetUID() && v.obj.GetResourceVersion() == from {
		superseded = append(v.superseded, from)
	}
	if len(superseded) > maxSuperseded {
		superseded = superseded[len(superseded)-maxSuperseded:]
	}
	w.last[key] = writtenVersion[T]{obj: obj.DeepCopyObject().(T), superseded: superseded}
}

// forget drops the record of an object that is gone.
func (w *written[T]) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.last, key)
}
