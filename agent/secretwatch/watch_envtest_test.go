package secretwatch

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/metadata"

	"github.com/webfarm/webfarm/internal/testenv"
)

// TestEnvtestSecretWatch: on a real API server, a wanted Secret's every
// change is reported (and once when its watch is up), another Secret's
// never; a namespace no longer wanted is not watched.
func TestEnvtestSecretWatch(t *testing.T) {
	env := testenv.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	const ns = "sites"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	secret := func(name string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{"tls.crt": []byte("1")}}
	}
	wanted, other := secret("www-tls"), secret("other")
	for _, s := range []*corev1.Secret{wanted, other} {
		if err := env.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	client, err := metadata.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	w := &Watch{Client: client, Changed: func(n types.NamespacedName) {
		mu.Lock()
		defer mu.Unlock()
		seen[n.String()]++
	}}
	t.Cleanup(w.Stop)
	count := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		return seen[ns+"/"+name]
	}
	waitCount := func(what string, want int) {
		t.Helper()
		start := time.Now()
		err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			return count("www-tls") >= want, nil
		})
		if err != nil {
			t.Fatalf("%s: www-tls reported %d times, want %d", what, count("www-tls"), want)
		}
		t.Logf("%s: reported after %v", what, time.Since(start).Round(time.Microsecond))
		if got := count("www-tls"); got != want {
			t.Errorf("%s: www-tls reported %d times, want %d", what, got, want)
		}
	}

	w.Want(ctx, []types.NamespacedName{{Namespace: ns, Name: "www-tls"}})
	waitCount("the watch is up", 1)
	other.Data["tls.crt"] = []byte("2")
	if err := env.Client.Update(ctx, other); err != nil {
		t.Fatal(err)
	}
	wanted.Data["tls.crt"] = []byte("2")
	if err := env.Client.Update(ctx, wanted); err != nil {
		t.Fatal(err)
	}
	waitCount("renewed", 2)
	if err := env.Client.Delete(ctx, wanted); err != nil {
		t.Fatal(err)
	}
	waitCount("deleted", 3)
	// Events of one namespace arrive in order: the other Secret's update
	// came before the wanted one's.
	if n := count("other"); n != 0 {
		t.Errorf("a Secret not wanted was reported %d times", n)
	}
	w.Want(ctx, nil)
	w.mu.Lock()
	left := len(w.namespaces)
	w.mu.Unlock()
	if left != 0 {
		t.Errorf("%d namespaces still watched with nothing wanted", left)
	}
}
