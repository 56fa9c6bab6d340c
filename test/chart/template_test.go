package chart

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

var customValues = filepath.Join(repoRoot, "test", "chart", "testdata", "values-custom.yaml")

func TestHelmLint(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"default values", nil},
		{"custom values", []string{"--values", customValues}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", chartDir, "--namespace", namespace}, tc.args...)
			out, err := run(helmBinary(t), args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("helm lint did not report a clean chart:\n%s", out)
			}
		})
	}
}

// convert turns a rendered object into its typed form.
func convert[T any](t *testing.T, obj *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(obj.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", obj.GetKind(), obj.GetName(), err)
	}
	return out
}

func TestTemplateDefaultValues(t *testing.T) {
	objs := mustHelmTemplate(t)
	want := []string{
		"ServiceAccount webfarm-system/webfarm-controller",
		"ServiceAccount webfarm-system/webfarm-agent",
		"Secret webfarm-system/webfarm-peer-key",
		"ClusterRole /webfarm-controller",
		"ClusterRole /webfarm-agent",
		"ClusterRoleBinding /webfarm-controller",
		"ClusterRoleBinding /webfarm-agent",
		"ClusterRole /webfarm-metrics-auth",
		"ClusterRoleBinding /webfarm-metrics-auth",
		"ClusterRole /webfarm-metrics-reader",
		"Role webfarm-system/webfarm-controller",
		"Role webfarm-system/webfarm-controller-farm",
		"Role webfarm-system/webfarm-agent",
		"Role webfarm-system/webfarm-agent-farm",
		"RoleBinding webfarm-system/webfarm-controller",
		"RoleBinding webfarm-system/webfarm-controller-farm",
		"RoleBinding webfarm-system/webfarm-agent",
		"RoleBinding webfarm-system/webfarm-agent-farm",
		"Deployment webfarm-system/webfarm-controller",
		"PodDisruptionBudget webfarm-system/webfarm-controller",
		"DaemonSet webfarm-system/webfarm-agent",
		"DaemonSet webfarm-system/webfarm-haproxy",
		"ValidatingAdmissionPolicy /webfarm-agent-own-node",
		"ValidatingAdmissionPolicyBinding /webfarm-agent-own-node",
		// The uninstall's cleanup: post-delete hooks.
		"ServiceAccount webfarm-system/webfarm-agent-cleanup",
		"ClusterRole /webfarm-agent-cleanup",
		"ClusterRoleBinding /webfarm-agent-cleanup",
		"Role webfarm-system/webfarm-agent-cleanup",
		"RoleBinding webfarm-system/webfarm-agent-cleanup",
		"ConfigMap webfarm-system/webfarm-agent-cleanup",
		"Job webfarm-system/webfarm-agent-cleanup",
	}
	got := ids(objs)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("rendered objects:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	checkController(t, convert[appsv1.Deployment](t, find(t, objs, "Deployment", namespace, "webfarm-controller")))
	agent := convert[appsv1.DaemonSet](t, find(t, objs, "DaemonSet", namespace, "webfarm-agent"))
	checkAgent(t, agent)
	checkHAProxyBeside(t, agent, convert[appsv1.DaemonSet](t, find(t, objs, "DaemonSet", namespace, "webfarm-haproxy")))

	secret := convert[corev1.Secret](t, find(t, objs, "Secret", namespace, "webfarm-peer-key"))
	if n := len(secret.Data["authkey"]); n != 48 {
		t.Errorf("peer Secret: authkey has %d bytes, want a generated key of 48", n)
	}
	again := convert[corev1.Secret](t, find(t, mustHelmTemplate(t), "Secret", namespace, "webfarm-peer-key"))
	if string(again.Data["authkey"]) == string(secret.Data["authkey"]) {
		t.Error("peer Secret: two installs generated the same key")
	}
}

// checkController checks what the issue asks of the controller Deployment.
func checkController(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("controller replicas = %v, want 2", d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Error("controller pod: runAsNonRoot is not set")
	}
	c := pod.Containers[0]
	for _, arg := range []string{"--namespace=webfarm-system", "--farm-namespaces=webfarm-system", "--leader-elect=true", "--health-probe-bind-address=:8081", "--metrics-bind-address=:8080", "--metrics-secure=true"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("controller args %q lack %s", c.Args, arg)
		}
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Error("controller: probes are not /healthz (liveness) and /readyz (readiness)")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Error("controller: no cpu and memory requests")
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("controller securityContext = %+v, want a read-only root, no escalation, every capability dropped", sc)
	}
}

// checkAgent checks what the issue asks of the agent DaemonSet.
func checkAgent(t *testing.T, ds *appsv1.DaemonSet) {
	t.Helper()
	pod := ds.Spec.Template.Spec
	if !pod.HostNetwork || pod.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("agent pod: hostNetwork %v, dnsPolicy %s; want host networking with ClusterFirstWithHostNet", pod.HostNetwork, pod.DNSPolicy)
	}
	if pod.NodeSelector["webfarm.io/front"] != "true" {
		t.Errorf("agent nodeSelector = %v, want webfarm.io/front=true", pod.NodeSelector)
	}
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 1 {
		t.Errorf("agent updateStrategy = %+v, want one front at a time", ds.Spec.UpdateStrategy)
	}
	c := pod.Containers[0]
	// The rolling update moves on once the new agent has its view of the
	// cluster, and a while after: the next front may hand it an address.
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" || ds.Spec.MinReadySeconds < 1 {
		t.Errorf("agent readiness %+v, minReadySeconds %d: want /readyz and a few seconds", p, ds.Spec.MinReadySeconds)
	}
	sc := c.SecurityContext
	// HAProxy, beside the agent, binds the farms' ports; the agent does not.
	// It runs ahead of the node's workload (--nice), which takes SYS_NICE.
	wantCaps := []corev1.Capability{"NET_ADMIN", "NET_RAW", "SYS_NICE"}
	if sc == nil || sc.Privileged == nil || *sc.Privileged || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || !slices.Equal(sc.Capabilities.Add, wantCaps) {
		t.Errorf("agent securityContext = %+v, want unprivileged, ALL dropped, only %v added", sc, wantCaps)
	}
	if grace := pod.TerminationGracePeriodSeconds; grace == nil || !slices.Contains(c.Args, "--shutdown-grace=10s") || *grace <= 10 {
		t.Errorf("agent: terminationGracePeriodSeconds %v and args %q: the grace must exceed --shutdown-grace", grace, c.Args)
	}
	if !slices.Contains(c.Args, "--nice=-10") {
		t.Errorf("agent args %q: want --nice=-10, the agent ahead of the node's workload", c.Args)
	}
	if !slices.Contains(c.Args, "--haproxy-beside") {
		t.Errorf("agent args %q: want --haproxy-beside, HAProxy being in a DaemonSet of its own", c.Args)
	}
	if !slices.Contains(c.Args, "--haproxy-metrics=127.0.0.1:8404") || slices.Contains(c.Args, "--no-access-log") {
		t.Errorf("agent args %q: want HAProxy's exporter on loopback, port 8404 (served through the agent), and the access log", c.Args)
	}
	if slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "haproxy-metrics" }) {
		t.Errorf("agent ports %+v: HAProxy's exporter is on loopback, no port to scrape", c.Ports)
	}
	// On the host network, every address would include the failover IPs.
	for _, arg := range []string{"--metrics-bind-address=$(HOST_IP):8083", "--health-probe-bind-address=$(HOST_IP):8082", "--metrics-secure=true",
		"--peer-bind-address=$(HOST_IP)"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("agent args %q lack %s", c.Args, arg)
		}
	}
	hostIP := c.Env[slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "HOST_IP" })]
	if hostIP.ValueFrom == nil || hostIP.ValueFrom.FieldRef == nil || hostIP.ValueFrom.FieldRef.FieldPath != "status.hostIP" {
		t.Errorf("agent: HOST_IP = %+v, want the downward API's status.hostIP", hostIP)
	}
	env := c.Env[slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "NODE_NAME" })]
	if env.ValueFrom == nil || env.ValueFrom.FieldRef == nil || env.ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("agent: NODE_NAME = %+v, want the downward API's spec.nodeName", env)
	}
	state := pod.Volumes[slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == "state" })]
	if state.HostPath == nil || state.HostPath.Path != "/run/webfarm" {
		t.Errorf("agent: state volume = %+v, want host path /run/webfarm", state)
	}
}

// checkHAProxyBeside checks that HAProxy's own DaemonSet runs on the
// agent's nodes, in the agent's state directory, with the least it needs.
func checkHAProxyBeside(t *testing.T, agent, haproxy *appsv1.DaemonSet) {
	t.Helper()
	pod, agentPod := haproxy.Spec.Template.Spec, agent.Spec.Template.Spec
	if !pod.HostNetwork || !reflect.DeepEqual(pod.NodeSelector, agentPod.NodeSelector) ||
		!reflect.DeepEqual(pod.Tolerations, agentPod.Tolerations) || pod.PriorityClassName != agentPod.PriorityClassName {
		t.Errorf("haproxy pod: hostNetwork %v, nodeSelector %v, tolerations %v, priority %q: want the host network and the agent's placement",
			pod.HostNetwork, pod.NodeSelector, pod.Tolerations, pod.PriorityClassName)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("haproxy pod mounts a ServiceAccount token: it needs no API")
	}
	if haproxy.Spec.MinReadySeconds < 1 {
		t.Errorf("haproxy minReadySeconds %d: the next front's HAProxy would hand its addresses to one not yet back", haproxy.Spec.MinReadySeconds)
	}
	c := pod.Containers[0]
	stateDir := strings.TrimPrefix(agentPod.Containers[0].Args[slices.IndexFunc(agentPod.Containers[0].Args,
		func(a string) bool { return strings.HasPrefix(a, "--state-dir=") })], "--state-dir=")
	if !slices.Equal(c.Args, []string{"haproxy", "--state-dir=" + stateDir}) {
		t.Errorf("haproxy args %q, want the haproxy subcommand on the agent's state dir %s", c.Args, stateDir)
	}
	if got, want := stateMount(pod, c), stateMount(agentPod, agentPod.Containers[0]); got != want {
		t.Errorf("haproxy's state: %s; want the agent's, %s", got, want)
	}
	sc := c.SecurityContext
	if sc == nil || sc.Privileged == nil || *sc.Privileged || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_BIND_SERVICE"}) || *sc.ReadOnlyRootFilesystem != true {
		t.Errorf("haproxy securityContext = %+v, want unprivileged, a read-only root, NET_BIND_SERVICE only", sc)
	}
}

// stateMount says where a container finds the node's state: host path,
// mount path and sub-path.
func stateMount(p corev1.PodSpec, c corev1.Container) string {
	m := c.VolumeMounts[slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "state" })]
	v := p.Volumes[slices.IndexFunc(p.Volumes, func(v corev1.Volume) bool { return v.Name == "state" })]
	return fmt.Sprintf("%s at %s (%s)", v.HostPath.Path, m.MountPath, m.SubPathExpr)
}

// TestTemplateCleanupHook: the uninstall's sweep finds the agent's nodes and
// waits for the agent's and HAProxy's pods, and its cleanup pod reads the
// state where the agent wrote it.
func TestTemplateCleanupHook(t *testing.T) {
	objs := mustHelmTemplate(t, "--set", "agent.stateDirPerNode=true")
	agent := convert[appsv1.DaemonSet](t, find(t, objs, "DaemonSet", namespace, "webfarm-agent"))
	haproxy := convert[appsv1.DaemonSet](t, find(t, objs, "DaemonSet", namespace, "webfarm-haproxy"))
	cm := convert[corev1.ConfigMap](t, find(t, objs, "ConfigMap", namespace, "webfarm-agent-cleanup"))
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict([]byte(cm.Data["pod.yaml"]), &pod); err != nil {
		t.Fatalf("the cleanup pod: %v", err)
	}
	c := pod.Spec.Containers[0]
	if got, want := stateMount(pod.Spec, c), stateMount(agent.Spec.Template.Spec, agent.Spec.Template.Spec.Containers[0]); got != want {
		t.Errorf("cleanup pod's state: %s; want the agent's, %s", got, want)
	}
	if !pod.Spec.HostNetwork || !slices.Equal(c.Args, []string{"cleanup", "--state-dir=/run/webfarm", "--haproxy-beside"}) {
		t.Errorf("cleanup pod: hostNetwork %v, args %q", pod.Spec.HostNetwork, c.Args)
	}
	job := convert[batchv1.Job](t, find(t, objs, "Job", namespace, "webfarm-agent-cleanup"))
	args := job.Spec.Template.Spec.Containers[0].Args
	flag := func(name string) string {
		i := slices.IndexFunc(args, func(a string) bool { return strings.HasPrefix(a, "--"+name+"=") })
		if i < 0 {
			t.Fatalf("sweep args %q lack --%s", args, name)
		}
		return strings.TrimPrefix(args[i], "--"+name+"=")
	}
	if fronts, err := labels.Parse(flag("fronts")); err != nil || !fronts.Matches(labels.Set(agent.Spec.Template.Spec.NodeSelector)) {
		t.Errorf("--fronts=%s (%v) does not select the agent's nodes %v", flag("fronts"), err, agent.Spec.Template.Spec.NodeSelector)
	}
	running, err := labels.Parse(flag("running"))
	if err != nil {
		t.Fatal(err)
	}
	for what, l := range map[string]map[string]string{"agent": agent.Spec.Template.Labels, "HAProxy": haproxy.Spec.Template.Labels} {
		if !running.Matches(labels.Set(l)) {
			t.Errorf("--running=%s does not wait for the %s's pods %v", running, what, l)
		}
	}
	if running.Matches(labels.Set(pod.Labels)) {
		t.Errorf("--running=%s waits for the cleanup pods themselves", running)
	}
}

// TestTemplateHAProxyInAgent: without haproxy.beside, the agent runs
// HAProxy itself, with the capability to bind its ports.
func TestTemplateHAProxyInAgent(t *testing.T) {
	objs := mustHelmTemplate(t, "--set", "haproxy.beside=false")
	for _, o := range objs {
		if o.GetKind() == "DaemonSet" && o.GetName() == "webfarm-haproxy" {
			t.Error("haproxy.beside=false renders HAProxy's DaemonSet")
		}
	}
	c := convert[appsv1.DaemonSet](t, find(t, objs, "DaemonSet", namespace, "webfarm-agent")).Spec.Template.Spec.Containers[0]
	if slices.Contains(c.Args, "--haproxy-beside") || !slices.Contains(c.SecurityContext.Capabilities.Add, "NET_BIND_SERVICE") {
		t.Errorf("agent args %q, capabilities %v: want HAProxy run by the agent, with NET_BIND_SERVICE", c.Args, c.SecurityContext.Capabilities.Add)
	}
}

func TestTemplateCustomValues(t *testing.T) {
	objs := mustHelmTemplate(t, "--values", customValues)

	for _, ns := range []string{"shop", "blog"} {
		find(t, objs, "Role", ns, "shopfarm-agent-farm")
		find(t, objs, "RoleBinding", ns, "shopfarm-agent-farm")
	}
	for _, o := range objs {
		if o.GetKind() == "Role" && o.GetName() == "shopfarm-agent-farm" && o.GetNamespace() == namespace {
			t.Errorf("farmNamespaces [shop blog] still grants the release namespace's Secrets")
		}
	}
	for _, c := range []string{"controller", "agent"} {
		find(t, objs, "Service", namespace, "shopfarm-"+c+"-metrics")
		find(t, objs, "ServiceMonitor", namespace, "shopfarm-"+c+"-metrics")
	}
	checkScrapes(t, objs)

	vap := find(t, objs, "ValidatingAdmissionPolicy", "", "shopfarm-agent-own-node")
	cond, _, _ := unstructured.NestedSlice(vap.Object, "spec", "matchConditions")
	if expr := cond[0].(map[string]any)["expression"]; !strings.Contains(expr.(string), "'system:serviceaccount:webfarm-system:shopfarm-agent'") {
		t.Errorf("own-node policy matches %q, not the agent's ServiceAccount shopfarm-agent", expr)
	}

	secret := convert[corev1.Secret](t, find(t, objs, "Secret", namespace, "shopfarm-heartbeat-key"))
	if got := string(secret.Data["authkey"]); got != "0123456789abcdef0123456789abcdef0123456789abcdef" {
		t.Errorf("peer Secret authkey = %q, want the supplied key", got)
	}

	ds := convert[appsv1.DaemonSet](t, find(t, objs, "DaemonSet", namespace, "shopfarm-agent"))
	pod := ds.Spec.Template.Spec
	args := pod.Containers[0].Args
	for _, arg := range []string{"--peer-secret=shopfarm-heartbeat-key", "--state-dir=/var/run/shopfarm", "--peer-port=17694",
		"--shutdown-grace=20s", "--failover-hook=/usr/local/bin/move-ovh-failover-ip", "--resync=30s",
		"--haproxy-metrics=node:18404", "--no-access-log", "--metrics-secure=false", "--metrics-bind-address=[$(HOST_IP)]:18083",
		"--peer-bind-address="} {
		if !slices.Contains(args, arg) {
			t.Errorf("agent args %q lack %s", args, arg)
		}
	}
	if *pod.TerminationGracePeriodSeconds != 45 || pod.PriorityClassName != "system-node-critical" ||
		len(pod.Tolerations) != 1 || pod.Affinity == nil || pod.NodeSelector["example.com/role"] != "front" ||
		pod.Containers[0].LivenessProbe != nil || ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
		t.Errorf("agent pod spec ignores values: %+v", pod)
	}

	checkHAProxyBeside(t, ds, convert[appsv1.DaemonSet](t, find(t, objs, "DaemonSet", namespace, "shopfarm-haproxy")))

	d := convert[appsv1.Deployment](t, find(t, objs, "Deployment", namespace, "shopfarm-controller"))
	if *d.Spec.Replicas != 3 || !slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--leader-election-id=shopfarm-leader") ||
		d.Spec.Template.Spec.Containers[0].Image != "registry.example.com/webfarm/controller:1.2.3" {
		t.Errorf("controller Deployment ignores values: %+v", d.Spec)
	}
}

// checkScrapes checks that Prometheus finds HAProxy's exporter beside the
// agent's metrics, keeps the FailoverIPs' namespaces on the controller's
// series, and gets the alerts.
func checkScrapes(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	svc := convert[corev1.Service](t, find(t, objs, "Service", namespace, "shopfarm-agent-metrics"))
	if i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "haproxy-metrics" }); i < 0 || svc.Spec.Ports[i].Port != 18404 {
		t.Errorf("agent metrics Service ports %+v: want haproxy-metrics 18404", svc.Spec.Ports)
	}
	endpoints := func(name string) []any {
		eps, _, _ := unstructured.NestedSlice(find(t, objs, "ServiceMonitor", namespace, name).Object, "spec", "endpoints")
		return eps
	}
	if eps := endpoints("shopfarm-agent-metrics"); len(eps) != 2 || eps[1].(map[string]any)["port"] != "haproxy-metrics" {
		t.Errorf("agent ServiceMonitor endpoints %v: want metrics and haproxy-metrics", eps)
	}
	if eps := endpoints("shopfarm-controller-metrics"); len(eps) != 1 || eps[0].(map[string]any)["honorLabels"] != true {
		t.Errorf("controller ServiceMonitor endpoints %v: want honorLabels, so that namespace is the FailoverIP's", eps)
	}
	rule := find(t, objs, "PrometheusRule", namespace, "shopfarm-alerts")
	if rule.GetLabels()["release"] != "prometheus" {
		t.Errorf("PrometheusRule labels %v lack release=prometheus", rule.GetLabels())
	}
	groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	var alerts []string
	for _, g := range groups {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			alerts = append(alerts, r.(map[string]any)["alert"].(string))
		}
	}
	for _, want := range []string{"WebfarmFailoverIPWithoutOwner", "WebfarmFailoverIPTwoHolders", "WebfarmHAProxyDown", "WebfarmHAProxyConfigRefused"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("PrometheusRule alerts %v lack %s", alerts, want)
		}
	}
}

func TestTemplatePeerSecretSupplied(t *testing.T) {
	objs := mustHelmTemplate(t, "--set", "peerSecret.create=false", "--set", "peerSecret.name=my-key")
	for _, o := range objs {
		if o.GetKind() == "Secret" {
			t.Errorf("peerSecret.create=false still renders Secret %s", o.GetName())
		}
	}
	ds := convert[appsv1.DaemonSet](t, find(t, objs, "DaemonSet", namespace, "webfarm-agent"))
	if !slices.Contains(ds.Spec.Template.Spec.Containers[0].Args, "--peer-secret=my-key") {
		t.Errorf("agent args %q do not name the supplied Secret my-key", ds.Spec.Template.Spec.Containers[0].Args)
	}
	role := find(t, objs, "Role", namespace, "webfarm-agent")
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	if names := rules[1].(map[string]any)["resourceNames"]; names.([]any)[0] != "my-key" {
		t.Errorf("agent Role grants Secret %v, want my-key", names)
	}
}
