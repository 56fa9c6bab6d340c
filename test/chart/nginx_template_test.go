package chart

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestTemplateNginxAndSecretWatch: agent.nginx mounts the parent of the
// vhosts directory at the host's path, gives the agent the nginx command
// that enters the host's mount namespace and the rights that needs, and
// sets its flags; agent.watchSecrets grants list and watch of Secrets in
// the farm namespaces and sets its flag. By default, none of it.
func TestTemplateNginxAndSecretWatch(t *testing.T) {
	agentPod := func(objs []*unstructured.Unstructured) corev1.PodSpec {
		return convert[appsv1.DaemonSet](t, find(t, objs, "DaemonSet", namespace, "webfarm-agent")).Spec.Template.Spec
	}
	watchesSecrets := func(objs []*unstructured.Unstructured) bool {
		role := convert[rbacv1.Role](t, find(t, objs, "Role", "shop", "webfarm-agent-farm"))
		return slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
			return slices.Contains(r.Resources, "secrets") && slices.Contains(r.Verbs, "watch") && slices.Contains(r.Verbs, "list")
		})
	}

	objs := mustHelmTemplate(t, "--set", "farmNamespaces={shop}")
	pod := agentPod(objs)
	if pod.HostPID || slices.ContainsFunc(pod.Containers[0].Args, func(a string) bool {
		return strings.HasPrefix(a, "--nginx") || a == "--watch-secrets"
	}) {
		t.Errorf("by default the agent gets hostPID %v or args %q", pod.HostPID, pod.Containers[0].Args)
	}
	if watchesSecrets(objs) {
		t.Error("by default the agent may list and watch the farm namespace's Secrets")
	}

	objs = mustHelmTemplate(t, "--set", "farmNamespaces={shop}", "--set", "agent.nginx.enabled=true",
		"--set", "agent.nginx.dir=/srv/nginx/sites/webfarm", "--set", "agent.watchSecrets=true")
	pod = agentPod(objs)
	c := pod.Containers[0]
	for _, arg := range []string{"--nginx-dir=/srv/nginx/sites/webfarm", "--nginx-binary=/etc/webfarm/nginx/nginx",
		"--nginx-access-log=/var/log/nginx/access.log", "--watch-secrets"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("agent args %q lack %s", c.Args, arg)
		}
	}
	if !pod.HostPID {
		t.Error("nginx enabled without hostPID: the agent cannot enter the host's mount namespace")
	}
	for _, cap := range []corev1.Capability{"SYS_ADMIN", "SYS_PTRACE", "SYS_CHROOT", "NET_ADMIN"} {
		if !slices.Contains(c.SecurityContext.Capabilities.Add, cap) {
			t.Errorf("capabilities %v lack %s", c.SecurityContext.Capabilities.Add, cap)
		}
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	if mounts["nginx-vhosts"] != "/srv/nginx/sites" || vols["nginx-vhosts"].HostPath == nil || vols["nginx-vhosts"].HostPath.Path != "/srv/nginx/sites" {
		t.Errorf("the vhosts' parent directory is not mounted at its host path: mount %q, volume %+v", mounts["nginx-vhosts"], vols["nginx-vhosts"])
	}
	if mounts["nginx-command"] != "/etc/webfarm/nginx" || vols["nginx-command"].ConfigMap == nil {
		t.Errorf("the nginx command is not mounted: %q, %+v", mounts["nginx-command"], vols["nginx-command"])
	}
	cm := convert[corev1.ConfigMap](t, find(t, objs, "ConfigMap", namespace, "webfarm-nginx"))
	if script := cm.Data["nginx"]; !strings.Contains(script, `nsenter --target 1 --mount -- "/usr/sbin/nginx" "$@"`) {
		t.Errorf("the nginx command does not run the host's nginx in its mount namespace:\n%s", script)
	}
	if !watchesSecrets(objs) {
		t.Error("agent.watchSecrets does not let the agent list and watch the farm namespace's Secrets")
	}
}
