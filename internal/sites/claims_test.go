package sites

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

func TestResolve(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	vip80 := Endpoint{Address: "192.0.2.10", Port: 80}
	vip443 := Endpoint{Address: "192.0.2.10", Port: 443, TLS: true}
	vip2 := Endpoint{Address: "192.0.2.20", Port: 80}
	plain443 := Endpoint{Address: "192.0.2.10", Port: 443}
	claim := func(key string, age int, eps []Endpoint, hosts ...string) Claim {
		return Claim{Key: key, Created: t0.Add(time.Duration(age) * time.Minute), Endpoints: eps, Hostnames: hosts}
	}
	for _, tc := range []struct {
		name   string
		claims []Claim
		want   map[string]Conflict
	}{
		{"different names share an endpoint", []Claim{
			claim("Site a/one", 0, []Endpoint{vip80, vip443}, "one.example.com"),
			claim("Site a/two", 1, []Endpoint{vip80, vip443}, "two.example.com"),
		}, map[string]Conflict{}},
		{"the same name on another address", []Claim{
			claim("Site a/one", 0, []Endpoint{vip80}, "www.example.com"),
			claim("Site b/one", 1, []Endpoint{vip2}, "www.example.com"),
		}, map[string]Conflict{}},
		{"the same name on the same endpoint: the newcomer loses", []Claim{
			claim("Site b/new", 5, []Endpoint{vip80}, "www.example.com"),
			claim("Site a/old", 1, []Endpoint{vip80}, "www.example.com"),
		}, map[string]Conflict{"Site b/new": {With: "Site a/old", Endpoint: vip80, Hostname: "www.example.com"}}},
		{"same age: the key decides", []Claim{
			claim("Site a/b", 0, []Endpoint{vip80}, "www.example.com"),
			claim("Site a/a", 0, []Endpoint{vip80}, "www.example.com"),
		}, map[string]Conflict{"Site a/b": {With: "Site a/a", Endpoint: vip80, Hostname: "www.example.com"}}},
		{"two farms without sites on one endpoint", []Claim{
			claim("WebFarm a/first", 0, []Endpoint{vip80}, ""),
			claim("WebFarm a/second", 1, []Endpoint{vip80}, ""),
		}, map[string]Conflict{"WebFarm a/second": {With: "WebFarm a/first", Endpoint: vip80}}},
		{"a farm without sites beside a site", []Claim{
			claim("WebFarm a/all", 0, []Endpoint{vip80}, ""),
			claim("Site a/one", 1, []Endpoint{vip80}, "www.example.com"),
		}, map[string]Conflict{}},
		{"TLS on a plain port", []Claim{
			claim("WebFarm a/plain", 0, []Endpoint{plain443}, ""),
			claim("Site a/tls", 1, []Endpoint{vip80, vip443}, "www.example.com"),
		}, map[string]Conflict{"Site a/tls": {With: "WebFarm a/plain", Endpoint: vip443}}},
		{"a refused claim takes nothing", []Claim{
			claim("Site a/one", 0, []Endpoint{vip80}, "one.example.com"),
			claim("Site a/two", 1, []Endpoint{vip80}, "two.example.com", "one.example.com"),
			claim("Site a/three", 2, []Endpoint{vip80}, "two.example.com"),
		}, map[string]Conflict{"Site a/two": {With: "Site a/one", Endpoint: vip80, Hostname: "one.example.com"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Resolve(tc.claims)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, want := range tc.want {
				if got[k] != want {
					t.Errorf("%s: got %v, want %v", k, got[k], want)
				}
			}
		})
	}
}

// TestClaimsPerFront: two farms on every address of their fronts clash
// only where they share a front.
func TestClaimsPerFront(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	farm := func(name string, age time.Duration) *webfarmv1.WebFarm {
		return &webfarmv1.WebFarm{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: name, CreationTimestamp: metav1.NewTime(t0.Add(age))}}
	}
	farms := map[string]*webfarmv1.WebFarm{"a/one": farm("one", 0), "a/two": farm("two", time.Minute)}
	for _, tc := range []struct {
		name   string
		fronts map[string][]string
		want   string
	}{
		{"disjoint fronts", map[string][]string{"a/one": {"n1"}, "a/two": {"n2"}}, ""},
		{"a shared front", map[string][]string{"a/one": {"n1", "n2"}, "a/two": {"n2", "n3"}}, "WebFarm a/one already serves *@n2:80"},
		{"one node (the agent)", nil, "WebFarm a/one already serves *:80"},
	} {
		got := Resolve(Claims(farms, nil, nil, tc.fronts))["WebFarm a/two"]
		if s := got.String(); (tc.want == "") != (got.With == "") || (tc.want != "" && s != tc.want) {
			t.Errorf("%s: conflict %q, want %q", tc.name, s, tc.want)
		}
	}
}

// TestClaimsNodeAddress: two farms on their fronts' own addresses and one
// port clash only where they share a front; a farm on its failover
// address alone does not clash with either.
func TestClaimsNodeAddress(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	farm := func(name string, age time.Duration, bindNode bool) *webfarmv1.WebFarm {
		wf := &webfarmv1.WebFarm{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: name, CreationTimestamp: metav1.NewTime(t0.Add(age))}}
		wf.Spec.FailoverIPs = []string{name}
		wf.Spec.Frontend.BindNodeAddress = bindNode
		return wf
	}
	addresses := map[string]string{"a/one": "192.0.2.1", "a/two": "192.0.2.2", "a/three": "192.0.2.3"}
	farms := map[string]*webfarmv1.WebFarm{"a/one": farm("one", 0, true), "a/two": farm("two", time.Minute, true), "a/three": farm("three", 2*time.Minute, false)}
	for _, tc := range []struct {
		name   string
		fronts map[string][]string
		want   string
	}{
		{"disjoint fronts", map[string][]string{"a/one": {"n1"}, "a/two": {"n2"}, "a/three": {"n1", "n2"}}, ""},
		{"a shared front", map[string][]string{"a/one": {"n1", "n2"}, "a/two": {"n2"}, "a/three": {"n2"}}, "WebFarm a/one already serves node@n2:80"},
		{"one node (the agent)", nil, "WebFarm a/one already serves node:80"},
	} {
		refused := Resolve(Claims(farms, nil, addresses, tc.fronts))
		got := refused["WebFarm a/two"]
		if s := got.String(); (tc.want == "") != (got.With == "") || (tc.want != "" && s != tc.want) {
			t.Errorf("%s: conflict %q, want %q", tc.name, s, tc.want)
		}
		if c, bad := refused["WebFarm a/three"]; bad {
			t.Errorf("%s: the farm on its failover address alone is refused: %s", tc.name, c)
		}
	}
}

// TestClaimsEveryAddressBesideGiven: a farm on every address and one on a
// failover address, on one port, clash where they share a front, whatever
// their hostnames (the bind on the given address takes its connections
// from the other): the newcomer is refused.
func TestClaimsEveryAddressBesideGiven(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	farm := func(name string, age time.Duration, port int32, fips ...string) *webfarmv1.WebFarm {
		wf := &webfarmv1.WebFarm{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: name, CreationTimestamp: metav1.NewTime(t0.Add(age))}}
		wf.Spec.FailoverIPs = fips
		wf.Spec.Frontend.Port = port
		return wf
	}
	site := func(name, farm string, age time.Duration, host string) *webfarmv1.Site {
		s := &webfarmv1.Site{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: name, CreationTimestamp: metav1.NewTime(t0.Add(age))}}
		s.Spec.WebFarmRef.Name = farm
		s.Spec.Hostnames = []webfarmv1.Hostname{webfarmv1.Hostname(host)}
		return s
	}
	addresses := map[string]string{"a/vip": "192.0.2.10"}
	shared := map[string][]string{"a/all": {"n1", "n2"}, "a/given": {"n2", "n3"}}
	for _, tc := range []struct {
		name          string
		all, given    *webfarmv1.WebFarm
		sites         []*webfarmv1.Site
		fronts        map[string][]string
		refused, want string
	}{
		{name: "every address first, a shared front",
			all: farm("all", 0, 80), given: farm("given", time.Minute, 80, "vip"), fronts: shared,
			refused: "WebFarm a/given", want: "WebFarm a/all already serves *@n2:80"},
		{name: "the given address first, a shared front",
			all: farm("all", time.Minute, 80), given: farm("given", 0, 80, "vip"), fronts: shared,
			refused: "WebFarm a/all", want: "WebFarm a/given already serves 192.0.2.10:80"},
		{name: "one node (the agent)",
			all: farm("all", 0, 80), given: farm("given", time.Minute, 80, "vip"),
			refused: "WebFarm a/given", want: "WebFarm a/all already serves *:80"},
		{name: "other hostnames, one socket each",
			all: farm("all", 0, 80), given: farm("given", time.Minute, 80, "vip"), fronts: shared,
			sites:   []*webfarmv1.Site{site("one", "all", 0, "one.example.com"), site("two", "given", time.Minute, "two.example.com")},
			refused: "Site a/two", want: "Site a/one already serves *@n2:80"},
		{name: "disjoint fronts",
			all: farm("all", 0, 80), given: farm("given", time.Minute, 80, "vip"),
			fronts: map[string][]string{"a/all": {"n1"}, "a/given": {"n2", "n3"}}},
		{name: "other ports",
			all: farm("all", 0, 8080), given: farm("given", time.Minute, 80, "vip"), fronts: shared},
	} {
		t.Run(tc.name, func(t *testing.T) {
			farms := map[string]*webfarmv1.WebFarm{"a/all": tc.all, "a/given": tc.given}
			refused := Resolve(Claims(farms, tc.sites, addresses, tc.fronts))
			if tc.want == "" {
				if len(refused) > 0 {
					t.Errorf("refused %v, want none", refused)
				}
				return
			}
			if got := refused[tc.refused]; len(refused) != 1 || got.String() != tc.want {
				t.Errorf("refused %v, want %s: %q", refused, tc.refused, tc.want)
			}
		})
	}
}
