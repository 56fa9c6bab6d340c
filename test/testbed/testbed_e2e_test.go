package testbed

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// TestE2ETestbedInfrastructure checks everything the testbed provides
// without the farm's own processes: the network, the web servers as the
// original setup configured them, the API server through each front's
// forwarder with TLS verified, and a Close that leaves nothing behind.
func TestE2ETestbedInfrastructure(t *testing.T) {
	Skip(t)
	tb := StartT(t, Options{WithoutFarm: true})

	t.Run("web servers answer the client with their names", func(t *testing.T) {
		for i, f := range tb.Fronts() {
			resp, err := Get(context.Background(), tb.Client(), FrontURL(i+1, "/"))
			if err != nil {
				t.Fatalf("GET %s from %s: %v", FrontURL(i+1, "/"), ClientNS, err)
			}
			if resp.Status != http.StatusOK || resp.Body != f.Name || resp.Front != f.Name {
				t.Errorf("%s answered %d %q (X-Front %q), want 200 %q", f.Name, resp.Status, resp.Body, resp.Front, f.Name)
			}
		}
	})

	t.Run("access log: X-Forwarded-For first, check.txt not logged", func(t *testing.T) {
		checkAccessLog(t, tb.Front("front2"))
	})

	t.Run("API server through the front's forwarder, TLS verified; cut and restored", func(t *testing.T) {
		checkForwarder(t, tb, tb.Front("front1"))
	})

	t.Run("objects: nodes, peer secret, samples with the VIP", func(t *testing.T) {
		checkObjects(t, tb)
	})

	t.Run("kubeconfig for people", func(t *testing.T) {
		out, err := tb.Kubectl("get", "wf,fn,fip", "--all-namespaces")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "webfarm") || !strings.Contains(out, "failover") {
			t.Errorf("kubectl get wf,fn,fip lists neither the webfarm nor the failover IP:\n%s", out)
		}
	})

	t.Run("ARP watcher sees the front that holds the VIP", func(t *testing.T) {
		checkARPWatcher(t, tb)
	})

	t.Run("Close leaves no namespace, process or file", func(t *testing.T) {
		dir := tb.Dir()
		// Close checks that no namespace or process is left before it lets
		// the next testbed start: checking here, after it, would race with
		// a testbed waiting for this one.
		if err := tb.Close(); err != nil {
			t.Fatalf("closing: %v", err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("directory %s still there (stat: %v)", dir, err)
		}
	})
}

func checkAccessLog(t *testing.T, f *Front) {
	c := NewClient(ClientOptions{})
	base := "http://" + f.Address + ":5380"
	if _, err := Do(context.Background(), c, http.MethodHead, base+"/check.txt", nil); err != nil {
		t.Fatalf("HEAD /check.txt on %s: %v", f.Name, err)
	}
	const visitor = "192.0.2.77"
	hdr := http.Header{"X-Forwarded-For": {visitor}, "User-Agent": {"testbed-probe"}}
	if _, err := Do(context.Background(), c, http.MethodGet, base+"/page", hdr); err != nil {
		t.Fatalf("GET /page on %s: %v", f.Name, err)
	}
	// nginx writes the line after answering: wait for it.
	var lines []string
	var page string
	err := WaitFor(func() (bool, error) {
		var err error
		lines, err = f.AccessLog()
		for _, l := range lines {
			if strings.Contains(l, "GET /page ") {
				page = l
			}
		}
		return page != "", err
	}, 5*time.Second)
	if err != nil {
		t.Fatalf("access log %s has no line for /page: %v", f.AccessLogPath(), err)
	}
	for _, l := range lines {
		if strings.Contains(l, "check.txt") {
			t.Errorf("/check.txt logged: %s", l)
		}
	}
	if !strings.HasPrefix(page, visitor+" ") || !strings.HasSuffix(page, `"`+ClientAddress+`"`) {
		t.Errorf("access log line %q: want the X-Forwarded-For address %s first and the peer %s last", page, visitor, ClientAddress)
	}
}

func checkForwarder(t *testing.T, tb *Testbed, f *Front) {
	// The kubeconfig names https://127.0.0.1:6443 with the envtest CA and no
	// insecure-skip-tls-verify: success means TLS verified inside the front.
	getNodes := func() (string, error) {
		return f.Run(tb.KubectlPath(), "--kubeconfig", f.Kubeconfig(), "--request-timeout", "3s", "get", "nodes", "-o", "name")
	}
	out, err := getNodes()
	if err != nil {
		t.Fatalf("kubectl in %s: %v", f.Namespace, err)
	}
	if !strings.Contains(out, "node/"+f.Name) {
		t.Errorf("kubectl get nodes in %s: %q lacks node/%s", f.Namespace, out, f.Name)
	}
	f.CutAPI()
	if out, err := getNodes(); err == nil {
		t.Errorf("API server still reachable from %s after CutAPI: %s", f.Namespace, out)
	}
	other := tb.Fronts()[len(tb.Fronts())-1]
	if _, err := other.Run(tb.KubectlPath(), "--kubeconfig", other.Kubeconfig(), "--request-timeout", "3s", "get", "nodes"); err != nil {
		t.Errorf("cutting %s also cut %s: %v", f.Name, other.Name, err)
	}
	f.RestoreAPI()
	if _, err := getNodes(); err != nil {
		t.Errorf("API server unreachable from %s after RestoreAPI: %v", f.Namespace, err)
	}
}

func checkObjects(t *testing.T, tb *Testbed) {
	ctx := context.Background()
	var nodes corev1.NodeList
	if err := tb.KubeClient().List(ctx, &nodes, client.MatchingLabels{FrontLabel: "true"}); err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != len(tb.Fronts()) {
		t.Errorf("%d front nodes, want %d", len(nodes.Items), len(tb.Fronts()))
	}
	for _, n := range nodes.Items {
		f := tb.Front(n.Name)
		if f == nil || len(n.Status.Addresses) == 0 || n.Status.Addresses[0].Address != f.Address {
			t.Errorf("node %s: addresses %v, want InternalIP of its front", n.Name, n.Status.Addresses)
		}
	}
	var fip webfarmv1.FailoverIP
	if err := tb.KubeClient().Get(ctx, client.ObjectKey{Namespace: SamplesNamespace, Name: "failover"}, &fip); err != nil {
		t.Fatal(err)
	}
	if fip.Spec.Address != VIP {
		t.Errorf("FailoverIP failover: address %s, want the VIP %s", fip.Spec.Address, VIP)
	}
	var secret corev1.Secret
	if err := tb.KubeClient().Get(ctx, client.ObjectKey{Namespace: OperatorNamespace, Name: PeerSecretName}, &secret); err != nil {
		t.Fatal(err)
	}
	if len(secret.Data[PeerSecretKey]) < 32 {
		t.Errorf("secret %s: key %s has %d bytes", PeerSecretName, PeerSecretKey, len(secret.Data[PeerSecretKey]))
	}
}

// checkARPWatcher puts the VIP on one front by hand (as an agent would) and
// then on another, and expects the watcher to see exactly that sequence.
func checkARPWatcher(t *testing.T, tb *Testbed) {
	w, err := tb.WatchARP()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	move := func(f *Front, add bool) {
		t.Helper()
		op := "del"
		if add {
			op = "add"
		}
		if _, err := f.Run("ip", "addr", op, VIP+"/32", "dev", "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	a, b := tb.Fronts()[0], tb.Fronts()[1]
	seen := func(name string) func() (bool, error) {
		return func() (bool, error) {
			h := w.Holders()
			return len(h) > 0 && h[len(h)-1] == name, nil
		}
	}
	move(a, true)
	if err := WaitFor(seen(a.Name), 5*time.Second); err != nil {
		t.Fatalf("watcher never saw %s answer for the VIP: %v (events %v)", a.Name, err, w.Events())
	}
	move(a, false)
	move(b, true)
	if err := WaitFor(seen(b.Name), 5*time.Second); err != nil {
		t.Fatalf("watcher never saw %s answer for the VIP: %v (events %v)", b.Name, err, w.Events())
	}
	move(b, false)
	if c := w.Conflicts(probeInterval / 2); len(c) > 0 {
		t.Errorf("two fronts answered at once: %v", c)
	}
	move(a, true)
	move(b, true)
	err = WaitFor(func() (bool, error) { return len(w.Conflicts(probeInterval/2)) > 0, nil }, 5*time.Second)
	move(a, false)
	move(b, false)
	if err != nil {
		t.Errorf("with the VIP on %s and %s, the watcher saw no conflict: %v", a.Name, b.Name, err)
	}
}
