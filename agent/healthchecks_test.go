package agent

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

func TestCheckTargets(t *testing.T) {
	fip := &webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "primary"}}
	fip.Spec.NodeSelector = &metav1.LabelSelector{}
	fip.Spec.Checks = []webfarmv1.HealthCheck{
		{Name: "mysql", Type: webfarmv1.CheckMySQL, MySQL: &webfarmv1.MySQLCheck{CredentialsSecretRef: webfarmv1.LocalObjectReference{Name: "monitor"}}},
		{Name: "script", Type: webfarmv1.CheckExec, Exec: &webfarmv1.ExecCheck{Script: "is-healthy"}},
		{Name: "port", Type: webfarmv1.CheckTCP, TCP: &webfarmv1.TCPCheck{Port: 3306}},
	}
	other := &webfarmv1.FailoverIP{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "other"}, Spec: fip.Spec}
	self := front("back1", "10.0.0.21", false)
	self.Spec.FailoverIPs = []string{"db/primary"}
	snap := testSnapshot("back1", []*webfarmv1.FrontNode{self})
	snap.failoverIPs = map[string]*webfarmv1.FailoverIP{"db/primary": fip, "db/other": other}

	secrets := map[string]map[string][]byte{"db/monitor": {"username": []byte("monitor"), "password": []byte("pw")}}
	secret := func(ns, name string) (map[string][]byte, error) {
		if d, ok := secrets[ns+"/"+name]; ok {
			return d, nil
		}
		return nil, errors.New("not found")
	}
	targets, problems := checkTargets(snap, "", secret, nil)
	if len(targets) != 1 || targets[0].FailoverIP != "db/primary" || len(targets[0].Checks) != 3 {
		t.Fatalf("targets = %+v, want db/primary (only it selects back1) with 3 checks", targets)
	}
	if len(problems) != 1 {
		t.Errorf("problems = %v, want one: no checks directory", problems)
	}
	if _, err := targets[0].Checks[1].NewProbe(); err == nil {
		t.Error("an exec check without a checks directory must fail, not pass")
	}
	before := targets[0].Checks[0].Version

	secrets["db/monitor"]["password"] = []byte("new")
	targets, _ = checkTargets(snap, "/etc/webfarm/checks", secret, nil)
	if targets[0].Checks[0].Version == before {
		t.Error("a new password must start the check over")
	}
	if p, err := targets[0].Checks[1].NewProbe(); err != nil || p == nil {
		t.Errorf("exec check with a directory: %v", err)
	}

	delete(secrets, "db/monitor")
	targets, problems = checkTargets(snap, "/etc/webfarm/checks", secret, nil)
	if len(problems) != 1 {
		t.Errorf("problems = %v, want the missing Secret", problems)
	}
	p, err := targets[0].Checks[0].NewProbe()
	if err == nil {
		_, err = p.Run(context.Background())
	}
	if err == nil {
		t.Error("a MySQL check without credentials must fail")
	}
}

// TestLastOwnerHere: only the last owner, with nobody else named since,
// may pass its MySQL check with a fenced primary of its own.
func TestLastOwnerHere(t *testing.T) {
	for _, tt := range []struct {
		name string
		st   webfarmv1.FailoverIPStatus
		want bool
	}{
		{"withdrawn from this node, nobody named since", webfarmv1.FailoverIPStatus{Epoch: 5, LastOwner: "back1", LastOwnerEpoch: 4}, true},
		{"named again after it", webfarmv1.FailoverIPStatus{Owner: "back1", Epoch: 6, LastOwner: "back1", LastOwnerEpoch: 4}, true},
		{"another node named since", webfarmv1.FailoverIPStatus{Owner: "back2", Epoch: 6, LastOwner: "back1", LastOwnerEpoch: 4}, false},
		{"another node held last", webfarmv1.FailoverIPStatus{Epoch: 7, LastOwner: "back2", LastOwnerEpoch: 6}, false},
		{"named after another node", webfarmv1.FailoverIPStatus{Owner: "back1", Epoch: 7, LastOwner: "back2", LastOwnerEpoch: 6}, false},
		{"no history", webfarmv1.FailoverIPStatus{Owner: "back1", Epoch: 1}, false},
	} {
		fip := &webfarmv1.FailoverIP{Status: tt.st}
		if got := lastOwnerHere(fip, "back1"); got != tt.want {
			t.Errorf("%s: lastOwnerHere = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestLastOwnersPromotedHere: the owner of the current epoch passes its
// fenced primary only while its master hook succeeded at that epoch.
func TestLastOwnersPromotedHere(t *testing.T) {
	addr := netip.MustParseAddr("10.0.0.50")
	named := &webfarmv1.FailoverIP{Spec: webfarmv1.FailoverIPSpec{Address: addr.String()},
		Status: webfarmv1.FailoverIPStatus{Owner: "back1", Epoch: 7, PreviousOwner: "back2", LastOwner: "back2", LastOwnerEpoch: 6}}
	other := named.DeepCopy()
	other.Status.Owner, other.Status.Epoch = "back2", 8
	for _, tt := range []struct {
		name     string
		fip      *webfarmv1.FailoverIP
		promoted map[netip.Addr]int64
		want     bool
	}{
		{"promoted here at the epoch it owns", named, map[netip.Addr]int64{addr: 7}, true},
		{"promoted here at an earlier epoch", named, map[netip.Addr]int64{addr: 5}, false},
		{"never promoted here", named, nil, false},
		{"another node owns a later epoch", other, map[netip.Addr]int64{addr: 7}, false},
	} {
		l := lastOwners{promotedAt: func(ip netip.Addr) (int64, bool) { e, ok := tt.promoted[ip]; return e, ok }}
		l.set(&snapshot{node: "back1", failoverIPs: map[string]*webfarmv1.FailoverIP{"db/primary": tt.fip}})
		if got := l.here("db/primary"); got != tt.want {
			t.Errorf("%s: here = %v, want %v", tt.name, got, tt.want)
		}
	}
}
