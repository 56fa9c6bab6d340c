package controllers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

func TestParseDrain(t *testing.T) {
	tests := []struct {
		annotations  map[string]string
		drain, valid bool
	}{
		{nil, false, true},
		{map[string]string{webfarmv1.DrainAnnotation: "true"}, true, true},
		{map[string]string{webfarmv1.DrainAnnotation: "false"}, false, true},
		{map[string]string{webfarmv1.DrainAnnotation: "yes"}, false, false},
		{map[string]string{webfarmv1.DrainAnnotation: "True"}, false, false},
		{map[string]string{webfarmv1.DrainAnnotation: ""}, false, false},
	}
	for _, tt := range tests {
		drain, valid := parseDrain(tt.annotations)
		if drain != tt.drain || valid != tt.valid {
			t.Errorf("parseDrain(%v) = %v, %v; want %v, %v", tt.annotations, drain, valid, tt.drain, tt.valid)
		}
	}
}

func TestNodeAddress(t *testing.T) {
	addr := func(typ corev1.NodeAddressType, a string) corev1.NodeAddress {
		return corev1.NodeAddress{Type: typ, Address: a}
	}
	tests := []struct {
		name  string
		addrs []corev1.NodeAddress
		want  string
	}{
		{"InternalIP first", []corev1.NodeAddress{addr(corev1.NodeExternalIP, "203.0.113.1"), addr(corev1.NodeInternalIP, "10.0.0.1")}, "10.0.0.1"},
		{"else the first IP", []corev1.NodeAddress{addr(corev1.NodeHostName, "front1"), addr(corev1.NodeExternalIP, "203.0.113.1")}, "203.0.113.1"},
		{"IPv6 normalised", []corev1.NodeAddress{addr(corev1.NodeInternalIP, "2001:DB8::1")}, "2001:db8::1"},
		{"none", []corev1.NodeAddress{addr(corev1.NodeHostName, "front1")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := &corev1.Node{Status: corev1.NodeStatus{Addresses: tt.addrs}}
			if got := nodeAddress(node); got != tt.want {
				t.Errorf("nodeAddress = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSelectingFarms(t *testing.T) {
	farm := func(ns, name string, sel metav1.LabelSelector) webfarmv1.WebFarm {
		return webfarmv1.WebFarm{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: webfarmv1.WebFarmSpec{FrontSelector: sel}}
	}
	farms := []webfarmv1.WebFarm{
		farm("web", "shop", metav1.LabelSelector{MatchLabels: map[string]string{"role": "front"}}),
		farm("blog", "main", metav1.LabelSelector{MatchLabels: map[string]string{"tier": "blog"}}),
		farm("web", "broken", metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "role", Operator: "Bogus"}}}),
	}
	got := selectingFarms(farms, map[string]string{"role": "front", "tier": "blog"})
	if want := []string{"blog/main", "web/shop"}; !equalStrings(got, want) {
		t.Errorf("selectingFarms = %v, want %v (sorted, invalid selector selecting nothing)", got, want)
	}
	if got := selectingFarms(farms, map[string]string{"role": "db"}); len(got) != 0 {
		t.Errorf("selectingFarms of an unselected node = %v, want none", got)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNewCookie(t *testing.T) {
	a, err := newCookie()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newCookie()
	if !cookieRE.MatchString(a) || a == b {
		t.Errorf("cookies %q, %q: want two different values matching %s", a, b, cookieRE)
	}
}

func TestFrontPhase(t *testing.T) {
	tests := []struct {
		fresh, drain, reported bool
		sessions               int32
		want                   webfarmv1.FrontPhase
	}{
		{true, false, true, 5, webfarmv1.FrontActive},
		{true, true, true, 5, webfarmv1.FrontDraining},
		{true, true, false, 0, webfarmv1.FrontDraining},
		{true, true, true, 0, webfarmv1.FrontDrained},
		{false, true, true, 0, webfarmv1.FrontDown},
		{false, false, true, 0, webfarmv1.FrontDown},
	}
	for _, tt := range tests {
		if got := frontPhase(tt.fresh, tt.drain, tt.sessions, tt.reported); got != tt.want {
			t.Errorf("frontPhase(fresh %v, drain %v, %d sessions, reported %v) = %s, want %s", tt.fresh, tt.drain, tt.sessions, tt.reported, got, tt.want)
		}
	}
}

func TestFrontSessions(t *testing.T) {
	proxy := func(name string, servers ...webfarmv1.ServerStatus) *webfarmv1.FrontNode {
		return &webfarmv1.FrontNode{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: webfarmv1.FrontNodeStatus{Servers: servers}}
	}
	srv := func(farm, front string, role webfarmv1.ServerRole, n int32) webfarmv1.ServerStatus {
		return webfarmv1.ServerStatus{Farm: farm, Front: front, Role: role, Sessions: &n}
	}
	owner := proxy("a", srv("web/shop", "b", webfarmv1.ServerMain, 2), srv("web/shop", "b", webfarmv1.ServerBackup, 1), srv("web/shop", "a", webfarmv1.ServerMain, 9))
	// An agent counts no session on the servers of a front that is not
	// draining as far as it knows.
	uncounted := proxy("c", webfarmv1.ServerStatus{Farm: "web/shop", Front: "b", Role: webfarmv1.ServerMain, State: "UP"})
	tests := []struct {
		name     string
		farms    []farmProxies
		want     int32
		reported bool
	}{
		{"main and backup on the active proxy", []farmProxies{{"web/shop", []*webfarmv1.FrontNode{owner}}}, 3, true},
		{"no active proxy reports yet", []farmProxies{{"web/shop", nil}}, 0, false},
		{"one farm of two unreported", []farmProxies{{"web/shop", []*webfarmv1.FrontNode{owner}}, {"web/blog", []*webfarmv1.FrontNode{owner}}}, 3, false},
		{"no farm", nil, 0, true},
		{"the active proxy counts none yet", []farmProxies{{"web/shop", []*webfarmv1.FrontNode{uncounted}}}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reported := frontSessions("b", tt.farms)
			if got != tt.want || reported != tt.reported {
				t.Errorf("frontSessions = %d, %v; want %d, %v", got, reported, tt.want, tt.reported)
			}
		})
	}
}

func TestReportedHeartbeat(t *testing.T) {
	rec := metav1.NewTime(t0)
	tests := []struct {
		name         string
		hb           heartbeat
		phaseChanged bool
		want         time.Time
	}{
		{"steady renewals cost no write", heartbeat{heard: true, lastAlive: t0.Add(time.Minute)}, false, t0},
		{"a phase change refreshes it", heartbeat{heard: true, lastAlive: t0.Add(time.Minute)}, true, t0.Add(time.Minute)},
		{"refreshed once the report interval behind", heartbeat{heard: true, lastAlive: t0.Add(heartbeatReportInterval)}, false, t0.Add(heartbeatReportInterval)},
		{"never heard keeps the record", heartbeat{lastAlive: t0.Add(time.Hour)}, true, t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reportedHeartbeat(&rec, tt.hb, tt.phaseChanged); !got.Time.Equal(tt.want) {
				t.Errorf("reportedHeartbeat = %v, want %v", got.Time, tt.want)
			}
		})
	}
}

func TestFrontDeadtime(t *testing.T) {
	fip := func(d time.Duration) webfarmv1.FailoverIP {
		return webfarmv1.FailoverIP{Spec: webfarmv1.FailoverIPSpec{Deadtime: metav1.Duration{Duration: d}}}
	}
	if got := frontDeadtime(nil); got != defaultDeadtime {
		t.Errorf("frontDeadtime(none) = %v, want %v", got, defaultDeadtime)
	}
	if got := frontDeadtime([]webfarmv1.FailoverIP{fip(3 * time.Second), fip(time.Second)}); got != time.Second {
		t.Errorf("frontDeadtime = %v, want the smallest, 1s", got)
	}
}

// TestReportsAwaited: a FrontNode stays while a FailoverIP's status names
// its node as one whose report may prove something: owner, candidate,
// voter, or a previous owner whose release is not yet proven.
func TestReportsAwaited(t *testing.T) {
	withdrawn := webfarmv1.FailoverIPStatus{Epoch: 2, PreviousOwner: "a", Voters: []string{"a", "b"}}
	released := withdrawn
	released.PreviousOwnerReleased = true
	owned := webfarmv1.FailoverIPStatus{Owner: "b", Epoch: 3, PreviousOwner: "a", Candidates: []string{"b", "c"}, Voters: []string{"b", "d"}}
	tests := []struct {
		name   string
		status webfarmv1.FailoverIPStatus
		node   string
		want   bool
	}{
		{"withdrawn: its previous owner", withdrawn, "a", true},
		{"withdrawn: a voter of its epoch", withdrawn, "b", true},
		{"withdrawn: another node", withdrawn, "c", false},
		{"release proven: a voter still", released, "b", true},
		{"release proven: the previous owner, a voter", released, "a", true},
		{"owned: the owner", owned, "b", true},
		{"owned: a candidate", owned, "c", true},
		{"owned: a voter", owned, "d", true},
		{"owned: the previous owner, fenced", owned, "a", false},
		{"never owned", webfarmv1.FailoverIPStatus{}, "a", false},
	}
	for _, tt := range tests {
		fips := []webfarmv1.FailoverIP{{Status: webfarmv1.FailoverIPStatus{Owner: "z", Epoch: 1}}, {Status: tt.status}}
		if got := reportsAwaited(fips, tt.node); got != tt.want {
			t.Errorf("%s: reportsAwaited(%s) = %v, want %v", tt.name, tt.node, got, tt.want)
		}
	}
	if reportsAwaited(nil, "a") {
		t.Error("awaited with no FailoverIP")
	}
}
