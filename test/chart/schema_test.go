package chart

import (
	"strings"
	"testing"
)

// TestSchemaRefusesBadValues: values.schema.json (and the template's own
// checks) refuse values the chart cannot use, and say which value and why.
func TestSchemaRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  []string
		want []string // every one must appear in helm's message
	}{
		{"unknown key", []string{"agent.privileged=true"}, []string{"/agent", "privileged"}},
		{"negative replicas", []string{"controller.replicas=-1"}, []string{"/controller/replicas", "minimum"}},
		{"port out of range", []string{"agent.peerPort=70000"}, []string{"/agent/peerPort", "maximum"}},
		{"pull policy", []string{"agent.image.pullPolicy=Sometimes"}, []string{"/agent/image/pullPolicy"}},
		{"farm namespace not a DNS label", []string{"farmNamespaces={Shop}"}, []string{"/farmNamespaces/0"}},
		{"relative state dir", []string{"agent.stateDir=run/webfarm"}, []string{"/agent/stateDir"}},
		{"short peer key", []string{"peerSecret.authkey=secret"}, []string{"/peerSecret/authkey"}},
		{"no Secret named", []string{"peerSecret.create=false"}, []string{"/peerSecret/name"}},
		{"extra arg not a flag", []string{"agent.extraArgs={resync}"}, []string{"/agent/extraArgs/0"}},
		{"two replicas without election", []string{"controller.leaderElection.enabled=false"}, []string{"/controller/leaderElection/enabled"}},
		{"ServiceMonitor without Service", []string{"metrics.serviceMonitor.enabled=true"}, []string{"/metrics/service/enabled"}},
		{"log level", []string{"controller.logLevel=verbose"}, []string{"/controller/logLevel"}},
		{"HAProxy's exporter via nothing known", []string{"agent.haproxyMetrics.via=internet"}, []string{"/agent/haproxyMetrics/via"}},
		{"bind address not an address", []string{"agent.bindAddress=eth0"}, []string{"/agent/bindAddress"}},
		{"peer bind address not an address", []string{"agent.peerBindAddress=eth0"}, []string{"/agent/peerBindAddress"}},
		{"peer bind address with a port", []string{"agent.peerBindAddress=[$(HOST_IP)]"}, []string{"/agent/peerBindAddress"}},
		{"metrics.secure not a boolean", []string{"metrics.secure=yes"}, []string{"/metrics/secure"}},
		{"grace shorter than the hand-off", []string{"agent.shutdownGraceSeconds=30", "agent.terminationGracePeriodSeconds=30"},
			[]string{"agent.terminationGracePeriodSeconds (30) must exceed agent.shutdownGraceSeconds (30)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			_, err := helmTemplate(t, args...)
			if err == nil {
				t.Fatalf("helm template --set %s: rendered, want it refused", strings.Join(tc.set, " --set "))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("helm's message lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
