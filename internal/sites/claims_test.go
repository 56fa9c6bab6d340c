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
