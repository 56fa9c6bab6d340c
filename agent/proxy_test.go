package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/webfarm/webfarm/agent/haproxy"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// A deleted stats Secret must not take the site down: the farm keeps the
// credentials last read, and the status says so.
func TestProxyFarmsKeepWhatTheyLastRead(t *testing.T) {
	ctx := context.Background()
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "stats"},
		Data:       map[string][]byte{"username": []byte("admin"), "password": []byte("s3cret")},
	}
	api := fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(secret).Build()
	a := &Agent{refs: newReferences(api)}
	wf := farm("shop", "web", 5080, 5081)
	wf.Spec.Stats = &webfarmv1.StatsSpec{Enabled: true, URI: "/stats", CredentialsSecretRef: &webfarmv1.LocalObjectReference{Name: "stats"}}
	snap := testSnapshot("front1", []*webfarmv1.FrontNode{front("front1", "10.0.0.11", false, "shop/web")}, wf)

	farms, problems := a.proxyFarms(ctx, snap)
	if len(farms) != 1 || farms[0].Stats == nil || farms[0].Stats.User != "admin" || len(problems) != 0 {
		t.Fatalf("with the Secret: farms %+v, problems %v", farms, problems)
	}

	if err := api.Delete(ctx, secret); err != nil {
		t.Fatal(err)
	}
	a.refs.forget()
	farms, problems = a.proxyFarms(ctx, snap)
	if len(farms) != 1 || farms[0].Stats == nil || farms[0].Stats.User != "admin" {
		t.Fatalf("Secret deleted: farms %+v; want the farm served with the credentials last read", farms)
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "keeps what it last read") || !strings.Contains(problems[0], "spec.stats.credentialsSecretRef") {
		t.Errorf("problems %v; want one naming the field and saying what is kept", problems)
	}

	// A farm whose Secret was never read is not served without it.
	b := &Agent{refs: newReferences(api)}
	if farms, problems := b.proxyFarms(ctx, snap); len(farms) != 0 || len(problems) != 1 {
		t.Errorf("never read: farms %+v, problems %v; want the farm left out and said so", farms, problems)
	}
}

// TestServerStatusesCountDrainingFrontsOnly: session counts change with
// every request, so an agent reports them only where a drain's end depends
// on them; steady traffic then costs no API write.
func TestServerStatusesCountDrainingFrontsOnly(t *testing.T) {
	farms := []haproxy.Farm{{Key: "web/shop", Fronts: []haproxy.Front{{Name: "front1"}, {Name: "front2"}}}}
	backend := haproxy.BackendName("web/shop")
	main1, backup1 := haproxy.ServerNames("front1")
	main2, _ := haproxy.ServerNames("front2")
	stats := []haproxy.ServerStat{
		{Backend: backend, Server: main1, Status: "DRAIN", Sessions: 4},
		{Backend: backend, Server: backup1, Status: "UP", Sessions: 1, Backup: true},
		{Backend: backend, Server: main2, Status: "UP", Sessions: 7},
		{Backend: "other", Server: "x", Status: "UP", Sessions: 3},
	}
	draining := func(farm, front string) bool { return farm == "web/shop" && front == "front1" }
	got := serverStatuses(farms, stats, draining)
	type server struct {
		front string
		role  webfarmv1.ServerRole
	}
	want := map[server]*int32{
		{"front1", webfarmv1.ServerMain}: ptr.To[int32](4), {"front1", webfarmv1.ServerBackup}: ptr.To[int32](1), {"front2", webfarmv1.ServerMain}: nil,
	}
	if len(got) != len(want) {
		t.Fatalf("serverStatuses = %+v, want %d servers of web/shop", got, len(want))
	}
	for _, s := range got {
		w := want[server{s.Front, s.Role}]
		if (w == nil) != (s.Sessions == nil) || (w != nil && *w != *s.Sessions) {
			t.Errorf("%s %s sessions = %s, want %s", s.Front, s.Role, ptrString(s.Sessions), ptrString(w))
		}
	}
}

func ptrString(p *int32) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

func TestSettledState(t *testing.T) {
	for in, want := range map[string]string{
		"UP": "UP", "UP 1/3": "UP", "DOWN 2/2": "DOWN", "DRAIN": "DRAIN", "no check": "no check", "MAINT": "MAINT", "UP x/3": "UP x/3",
	} {
		if got := settledState(in); got != want {
			t.Errorf("settledState(%q) = %q, want %q", in, got, want)
		}
	}
}
