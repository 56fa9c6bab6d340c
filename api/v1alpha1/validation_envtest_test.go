package v1alpha1_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/webfarm/webfarm/internal/testenv"
)

// These tests run against a real kube-apiserver: they prove that the CRDs'
// OpenAPI and CEL rules, not just Go code, accept the samples and refuse bad
// input with a message that names the field.

func TestEnvtestSamplesAreAccepted(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	ns := newNamespace(t, env)

	for _, obj := range loadSamples(t) {
		obj.SetNamespace(ns)
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Errorf("creating sample %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
}

func TestEnvtestInvalidObjectsAreRejected(t *testing.T) {
	env := testenv.Start(t)
	ns := newNamespace(t, env)

	for _, tc := range invalidObjects {
		t.Run(tc.name, func(t *testing.T) {
			obj := tc.object()
			obj.SetNamespace(ns)
			err := env.Client.Create(context.Background(), obj)
			if err == nil {
				t.Fatalf("the API server accepted %s", tc.name)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error does not name %s: %v", tc.field, err)
			}
		})
	}
}

func TestEnvtestFrontNodeIdentityIsImmutable(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	fn := frontNode(map[string]any{"nodeName": "front1", "address": "10.0.0.1", "cookie": "k3x9q2"})
	if err := env.Client.Create(ctx, fn); err != nil {
		t.Fatal(err)
	}
	for field, value := range map[string]string{"cookie": "other1", "nodeName": "front2"} {
		changed := fn.DeepCopy()
		if err := unstructured.SetNestedField(changed.Object, value, "spec", field); err != nil {
			t.Fatal(err)
		}
		err := env.Client.Update(ctx, changed)
		if err == nil || !strings.Contains(err.Error(), "spec."+field) {
			t.Errorf("changing spec.%s: want an error naming it, got %v", field, err)
		}
	}
}

// TestEnvtestFailoverIPAddressIsImmutable: editing address or interface
// would leak the old address on its holder, so the API server refuses it,
// naming the field; setting or removing the optional interface is refused
// too. Other fields stay editable.
func TestEnvtestFailoverIPAddressIsImmutable(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	ns := newNamespace(t, env)
	create := func(edits ...edit) *unstructured.Unstructured {
		t.Helper()
		obj := failoverIP(edits...)()
		obj.SetNamespace(ns)
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		return obj
	}
	withInterface := create(set("interface", "eth1"))
	without := create()
	for _, tc := range []struct {
		name, field string
		obj         *unstructured.Unstructured
		edit        edit
	}{
		{"address changed", "spec.address", withInterface, set("address", "192.0.2.11")},
		{"interface changed", "spec.interface", withInterface, set("interface", "eth2")},
		{"interface removed", "spec.interface", withInterface, unset("interface")},
		{"interface set", "spec.interface", without, set("interface", "eth1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed := tc.obj.DeepCopy()
			spec, _, _ := unstructured.NestedMap(changed.Object, "spec")
			tc.edit(spec)
			if err := unstructured.SetNestedMap(changed.Object, spec, "spec"); err != nil {
				t.Fatal(err)
			}
			err := env.Client.Update(ctx, changed)
			if err == nil {
				t.Fatalf("the API server accepted: %s", tc.name)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), "immutable") {
				t.Errorf("error does not say that %s is immutable: %v", tc.field, err)
			}
		})
	}
	editable := withInterface.DeepCopy()
	if err := unstructured.SetNestedField(editable.Object, "3s", "spec", "deadtime"); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Update(ctx, editable); err != nil {
		t.Errorf("changing deadtime was refused: %v", err)
	}
}

func TestEnvtestKubectlExplainDocumentsEveryField(t *testing.T) {
	env := testenv.Start(t)
	// The API server publishes a new CRD's schema a moment after creating it.
	var out string
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) {
			var err error
			out, err = env.Kubectl("explain", "webfarm.spec", "--recursive")
			return err == nil, nil
		})
	if err != nil {
		t.Fatalf("kubectl explain webfarm.spec never answered: %v", err)
	}
	for _, field := range []string{"frontSelector", "failoverIPs", "frontend", "backend", "webPort", "drainPort",
		"balance", "cookie", "forwardFor", "retries", "redispatch", "healthCheck", "interval", "rise", "fall",
		"timeouts", "connect", "client", "server", "stats", "credentialsSecretRef", "errorPages", "configMapRef"} {
		if !strings.Contains(out, field) {
			t.Errorf("kubectl explain webfarm.spec --recursive lacks %s", field)
		}
	}
	// Every field carries its description, not only its name.
	for _, path := range []string{"webfarm.spec.backend.drainPort", "failoverip.spec.deadtime", "failoverip.spec.pingTargets", "frontnode.status.serving", "frontnode.spec.cookie"} {
		out, err := env.Kubectl("explain", path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "DESCRIPTION") || len(out) < 200 {
			t.Errorf("kubectl explain %s is not documented:\n%s", path, out)
		}
	}
}

// invalidCase is one object the API server must refuse, and the field its
// error message must name.
type invalidCase struct {
	name   string
	field  string
	object func() *unstructured.Unstructured
}

var invalidObjects = []invalidCase{
	{"failover address not an IP", "spec.address", failoverIP(set("address", "10.0.0.300"))},
	{"failover address with prefix", "spec.address", failoverIP(set("address", "10.0.0.0/24"))},
	{"failover address loopback", "spec.address", failoverIP(set("address", "127.0.0.1"))},
	{"failover address missing", "spec.address", failoverIP(unset("address"))},
	{"deadtime not above keepalive", "spec.deadtime", failoverIP(set("keepalive", "1s"), set("deadtime", "1s"))},
	{"keepalive not a duration", "spec.keepalive", failoverIP(set("keepalive", "fast"))},
	{"guard eats deadtime", "spec.guard", failoverIP(set("keepalive", "1s"), set("deadtime", "2s"), set("guard", "1s"))},
	{"interface with shell characters", "spec.interface", failoverIP(set("interface", "eth0;reboot"))},
	{"interface name too long", "spec.interface", failoverIP(set("interface", "averyveryverylonglink"))},
	{"ping target a host name", "pingTargets must be IPv4 or IPv6 addresses", failoverIP(set("pingTargets", []any{"10.0.0.1", "gateway"}))},
	{"ping target with prefix", "pingTargets must be IPv4 or IPv6 addresses", failoverIP(set("pingTargets", []any{"10.0.0.1/24"}))},
	{"five ping targets", "spec.pingTargets", failoverIP(set("pingTargets", []any{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"}))},
	{"ping target listed twice", "spec.pingTargets", failoverIP(set("pingTargets", []any{"10.0.0.1", "10.0.0.1"}))},
	{"both nodeSelector and frontSelector", "spec.nodeSelector", failoverIP(set("nodeSelector", map[string]any{}), set("frontSelector", map[string]any{}))},
	{"checks without nodeSelector", "spec.checks", failoverIP(set("checks", []any{map[string]any{"name": "p", "type": "TCP", "tcp": map[string]any{"port": int64(3306)}}}))},
	{"check type without its field", "set exactly the field named by type", failoverIP(set("nodeSelector", map[string]any{}), set("checks", []any{map[string]any{"name": "p", "type": "TCP", "http": map[string]any{"port": int64(80)}}}))},
	{"check timeout above interval", "spec.checks[0].timeout", failoverIP(set("nodeSelector", map[string]any{}), set("checks", []any{map[string]any{"name": "p", "type": "TCP", "tcp": map[string]any{"port": int64(3306)}, "interval": "1s", "timeout": "2s"}}))},
	{"check fall 0", "spec.checks[0].fall", failoverIP(set("nodeSelector", map[string]any{}), set("checks", []any{map[string]any{"name": "p", "type": "TCP", "tcp": map[string]any{"port": int64(3306)}, "fall": int64(0)}}))},
	{"exec check with a path", "spec.checks[0].exec.script", failoverIP(set("nodeSelector", map[string]any{}), set("checks", []any{map[string]any{"name": "p", "type": "Exec", "exec": map[string]any{"script": "/bin/sh"}}}))},
	{"hook with a path", "spec.hooks.master", failoverIP(set("hooks", map[string]any{"master": "../../bin/sh"}))},
	{"mysql check without credentials", "spec.checks[0].mysql.credentialsSecretRef", failoverIP(set("nodeSelector", map[string]any{}), set("checks", []any{map[string]any{"name": "db", "type": "MySQL", "mysql": map[string]any{}}}))},
	{"frontend port 0", "spec.frontend.port", webFarm(set("frontend.port", int64(0)))},
	{"frontend port 70000", "spec.frontend.port", webFarm(set("frontend.port", int64(70000)))},
	{"maxConn 0", "spec.frontend.maxConn", webFarm(set("frontend.maxConn", int64(0)))},
	{"web port equals drain port", "spec.backend.drainPort", webFarm(set("backend.webPort", int64(8080)), set("backend.drainPort", int64(8080)))},
	{"drain port equals default web port", "spec.backend.drainPort", webFarm(set("backend.drainPort", int64(5080)))},
	{"unknown balance algorithm", "spec.backend.balance", webFarm(set("backend.balance", "random"))},
	{"negative retries", "spec.backend.retries", webFarm(set("backend.retries", int64(-1)))},
	{"cookie name with a space", "spec.backend.cookie.name", webFarm(set("backend.cookie.name", "SERVER ID"))},
	{"cookie name with a newline", "spec.backend.cookie.name", webFarm(set("backend.cookie.name", "SERVERID\nbackend evil"))},
	{"check path with a newline", "spec.healthCheck.path", webFarm(set("healthCheck.path", "/check.txt\n  server evil 6.6.6.6:80"))},
	{"check path without leading slash", "spec.healthCheck.path", webFarm(set("healthCheck.path", "check.txt"))},
	{"check path with a space", "spec.healthCheck.path", webFarm(set("healthCheck.path", "/check.txt HTTP/1.1"))},
	{"check method POST", "spec.healthCheck.method", webFarm(set("healthCheck.method", "POST"))},
	{"check interval in words", "spec.healthCheck.interval", webFarm(set("healthCheck.interval", "2 seconds"))},
	{"check interval too short", "spec.healthCheck.interval", webFarm(set("healthCheck.interval", "1ms"))},
	{"check fastInterval too short", "spec.healthCheck.fastInterval", webFarm(set("healthCheck.fastInterval", "10ms"))},
	{"check timeout too short", "spec.healthCheck.timeout", webFarm(set("healthCheck.timeout", "1ms"))},
	{"observe in HAProxy's words", "spec.healthCheck.observe", webFarm(set("healthCheck.observe", "layer4"))},
	{"errorLimit 0", "spec.healthCheck.errorLimit", webFarm(set("healthCheck.errorLimit", int64(0)))},
	{"rise 0", "spec.healthCheck.rise", webFarm(set("healthCheck.rise", int64(0)))},
	{"connect timeout 0s", "spec.timeouts.connect", webFarm(set("timeouts.connect", "0s"))},
	{"stats uri without leading slash", "spec.stats.uri", webFarm(set("stats.uri", "haproxy?stats"), set("stats.credentialsSecretRef.name", "s"))},
	{"stats uri with a quote", "spec.stats.uri", webFarm(set("stats.uri", `/stats"`), set("stats.credentialsSecretRef.name", "s"))},
	{"stats enabled without credentials", "spec.stats.credentialsSecretRef", webFarm(set("stats.enabled", true))},
	{"stats secret name not a name", "spec.stats.credentialsSecretRef.name", webFarm(set("stats.credentialsSecretRef.name", "My Secret"))},
	{"error pages without a ConfigMap", "spec.errorPages.configMapRef", webFarm(set("errorPages.other", "x"))},
	{"failover IP listed twice", "spec.failoverIPs", webFarm(set("failoverIPs", []any{"vip", "vip"}))},
	{"front selector missing", "spec.frontSelector", webFarm(unset("frontSelector"))},
	{"front node address not an IP", "spec.address", func() *unstructured.Unstructured {
		return frontNode(map[string]any{"nodeName": "front1", "address": "front1", "cookie": "k3x9q2"})
	}},
	{"front node cookie with a space", "spec.cookie", func() *unstructured.Unstructured {
		return frontNode(map[string]any{"nodeName": "front1", "address": "10.0.0.1", "cookie": "front 1"})
	}},
}

type edit func(spec map[string]any)

// set sets a dotted path below spec.
func set(path string, value any) edit {
	return func(spec map[string]any) {
		if err := unstructured.SetNestedField(spec, value, strings.Split(path, ".")...); err != nil {
			panic(err)
		}
	}
}

func unset(path string) edit {
	return func(spec map[string]any) { unstructured.RemoveNestedField(spec, strings.Split(path, ".")...) }
}

func webFarm(edits ...edit) func() *unstructured.Unstructured {
	return func() *unstructured.Unstructured {
		spec := map[string]any{
			"frontSelector": map[string]any{"matchLabels": map[string]any{"webfarm.io/front": "true"}},
		}
		return object("WebFarm", spec, edits)
	}
}

func failoverIP(edits ...edit) func() *unstructured.Unstructured {
	return func() *unstructured.Unstructured {
		return object("FailoverIP", map[string]any{"address": "192.0.2.10"}, edits)
	}
}

func frontNode(spec map[string]any) *unstructured.Unstructured {
	obj := object("FrontNode", spec, nil)
	obj.SetName(spec["nodeName"].(string))
	return obj
}

func object(kind string, spec map[string]any, edits []edit) *unstructured.Unstructured {
	for _, e := range edits {
		e(spec)
	}
	obj := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	obj.SetAPIVersion("webfarm.io/v1alpha1")
	obj.SetKind(kind)
	obj.SetGenerateName(strings.ToLower(kind) + "-")
	return obj
}

func newNamespace(t *testing.T, env *testenv.Env) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "validation-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// loadSamples reads every object of config/samples but its kustomization.
func loadSamples(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(), "config", "samples")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	database, err := filepath.Glob(filepath.Join(dir, "database", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, database...)
	var objs []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(data), "\n---\n") {
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(obj.Object) > 0 {
				objs = append(objs, obj)
			}
		}
	}
	if len(objs) < 4 {
		t.Fatalf("found %d sample objects in %s, want a WebFarm, a FailoverIP, a Secret and a ConfigMap", len(objs), dir)
	}
	return objs
}
