package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// references reads the Secrets and ConfigMaps that farms refer to straight
// from the API server — the agent has no cluster-wide watch on them — and
// remembers what it last read. Each object is read once per resync; while the
// API server cannot be reached the agent keeps using what it last read, so an
// outage never changes the proxy.
type references struct {
	api client.Reader

	mu      sync.Mutex
	objects map[refKey]*memo
}

type refKey struct {
	kind string
	types.NamespacedName
}

type memo struct {
	data  map[string][]byte
	fresh bool // read since the last forget
}

func newReferences(api client.Reader) *references {
	return &references{api: api, objects: map[refKey]*memo{}}
}

// forget makes the next look-up of every object read it again.
func (r *references) forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.objects {
		m.fresh = false
	}
}

// forgetSecret makes the next look-up of one Secret read it again.
func (r *references) forgetSecret(name types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m, known := r.objects[refKey{"Secret", name}]; known {
		m.fresh = false
	}
}

// secret returns the data of a Secret.
func (r *references) secret(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	return r.lookup(ctx, refKey{"Secret", types.NamespacedName{Namespace: namespace, Name: name}}, func(ctx context.Context, key client.ObjectKey) (map[string][]byte, error) {
		var s corev1.Secret
		err := r.api.Get(ctx, key, &s)
		return s.Data, err
	})
}

// configMap returns the data of a ConfigMap, binary data included.
func (r *references) configMap(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	return r.lookup(ctx, refKey{"ConfigMap", types.NamespacedName{Namespace: namespace, Name: name}}, func(ctx context.Context, key client.ObjectKey) (map[string][]byte, error) {
		var cm corev1.ConfigMap
		err := r.api.Get(ctx, key, &cm)
		data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
		for k, v := range cm.Data {
			data[k] = []byte(v)
		}
		for k, v := range cm.BinaryData {
			data[k] = v
		}
		return data, err
	})
}

// peerKey returns the shared key of the peer heartbeats, or nil when the
// Secret or its key is missing: the agent then neither sends nor accepts
// peer heartbeats and proves its liveness through its Lease alone.
func (r *references) peerKey(ctx context.Context, namespace, name string) []byte {
	data, err := r.secret(ctx, namespace, name)
	if err != nil {
		return nil
	}
	return data[PeerSecretKey]
}

type getFunc func(context.Context, client.ObjectKey) (map[string][]byte, error)

// readTimeout bounds the read of one Secret or ConfigMap. It holds up the
// node's sync, and what was last read serves meanwhile: an API server that
// has not answered by then is treated as away.
const readTimeout = 5 * time.Second

func (r *references) lookup(ctx context.Context, key refKey, get getFunc) (map[string][]byte, error) {
	r.mu.Lock()
	m, known := r.objects[key]
	r.mu.Unlock()
	if known && m.fresh {
		return m.data, nil
	}
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	data, err := get(ctx, key.NamespacedName)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil:
		r.objects[key] = &memo{data: data, fresh: true}
		return data, nil
	case apierrors.IsNotFound(err):
		delete(r.objects, key)
		return nil, fmt.Errorf("%s %s not found", key.kind, key.NamespacedName)
	case known:
		// The API server is away: keep what was last read.
		return m.data, nil
	}
	return nil, fmt.Errorf("reading %s %s: %w", key.kind, key.NamespacedName, err)
}
