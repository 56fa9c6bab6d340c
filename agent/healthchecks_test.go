package agent

import (
	"context"
	"errors"
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
	targets, problems := checkTargets(snap, "", secret)
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
	targets, _ = checkTargets(snap, "/etc/webfarm/checks", secret)
	if targets[0].Checks[0].Version == before {
		t.Error("a new password must start the check over")
	}
	if p, err := targets[0].Checks[1].NewProbe(); err != nil || p == nil {
		t.Errorf("exec check with a directory: %v", err)
	}

	delete(secrets, "db/monitor")
	targets, problems = checkTargets(snap, "/etc/webfarm/checks", secret)
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
