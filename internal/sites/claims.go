package sites

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// AnyAddress is the address of an endpoint on every address of the fronts:
// a farm without failover addresses.
const AnyAddress = "*"

// NodeAddress is the address of an endpoint on each front's own address
// (a farm's spec.frontend.bindNodeAddress).
const NodeAddress = "node"

// Endpoint is one address and port where HAProxy accepts clients, in plain
// HTTP or over TLS.
type Endpoint struct {
	Address string // an IP address, or AnyAddress
	Port    int32
	TLS     bool
}

func (e Endpoint) String() string {
	host := e.Address
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
		host = "[" + host + "]"
	}
	return fmt.Sprintf("%s:%d", host, e.Port)
}

// FarmAddresses are the addresses a farm is served on: those of its
// failover IPs that exist (addresses maps "namespace/name" of a FailoverIP
// to its address), or AnyAddress for a farm that lists none.
func FarmAddresses(farm *webfarmv1.WebFarm, addresses map[string]string) []string {
	if len(farm.Spec.FailoverIPs) == 0 {
		return []string{AnyAddress}
	}
	var out []string
	for _, name := range farm.Spec.FailoverIPs {
		if a, ok := addresses[farm.Namespace+"/"+name]; ok && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	if farm.Spec.Frontend.BindNodeAddress {
		out = append(out, NodeAddress)
	}
	return out
}

// FarmPort is the farm's plain-HTTP port, its default included.
func FarmPort(farm *webfarmv1.WebFarm) int32 {
	if farm.Spec.Frontend.Port == 0 {
		return 80
	}
	return farm.Spec.Frontend.Port
}

// TLSPort is the site's HTTPS port, its default included; 0 without TLS.
func TLSPort(site *webfarmv1.Site) int32 {
	switch {
	case site.Spec.TLS == nil:
		return 0
	case site.Spec.TLS.Port == 0:
		return 443
	}
	return site.Spec.TLS.Port
}

// FarmEndpoints are where a farm is served in plain HTTP: its port on each
// of its addresses.
func FarmEndpoints(farm *webfarmv1.WebFarm, addresses map[string]string) []Endpoint {
	var out []Endpoint
	for _, a := range FarmAddresses(farm, addresses) {
		out = append(out, Endpoint{Address: a, Port: FarmPort(farm)})
	}
	return out
}

// SiteEndpoints are where a site of farm is served: the farm's port on
// each of its addresses, and the site's HTTPS port on each too.
func SiteEndpoints(site *webfarmv1.Site, farm *webfarmv1.WebFarm, addresses map[string]string) []Endpoint {
	out := FarmEndpoints(farm, addresses)
	if port := TLSPort(site); port != 0 {
		for _, a := range FarmAddresses(farm, addresses) {
			out = append(out, Endpoint{Address: a, Port: port, TLS: true})
		}
	}
	return out
}

// Claim is what one object asks of the fronts: its hostnames on its
// endpoints. A farm without Sites claims every hostname of its endpoints
// (Hostnames holds the one empty name).
type Claim struct {
	// Key names the object: "Site namespace/name" or "WebFarm namespace/name".
	Key       string
	Created   time.Time
	Endpoints []Endpoint
	Hostnames []string
	// farm is the key of the WebFarm the claim is for.
	farm string
	// nodes are the fronts of the farm, where its endpoints on a given
	// address are bound; nil: the one node whose agent resolves.
	nodes []string
}

// Conflict is why a claim was refused.
type Conflict struct {
	// With is the Key of the claim that keeps the name or endpoint.
	With     string
	Endpoint Endpoint
	// Hostname is the name both claim; empty when both claim every name,
	// or when the endpoint is plain HTTP for one and TLS for the other.
	Hostname string
}

func (c Conflict) String() string {
	if c.Hostname != "" {
		return fmt.Sprintf("%s already serves %s on %s", c.With, c.Hostname, c.Endpoint)
	}
	return fmt.Sprintf("%s already serves %s", c.With, c.Endpoint)
}

// spot is an endpoint without its protocol: two claims on one spot share
// a socket.
type spot struct {
	addr string
	port int32
}

// grants are the claims granted so far, by spot.
type grants struct {
	tls   map[spot]bool   // whether the spot is served over TLS
	setBy map[spot]string // the claim that opened the spot
	names map[spot]map[string]string
	// binds are, per front and port, the claim binding every address and
	// the one binding a given address: on Linux the one takes the other's
	// connections, so they never share a front's port.
	binds map[bind]holder
}

// bind is a port of one front, bound on every address or on given ones.
type bind struct {
	node  string
	port  int32
	every bool
}

// holder is the claim that holds a bind, and its endpoint.
type holder struct {
	key      string
	endpoint Endpoint
}

// binds are where e of c binds: on the front it names ("*@front1",
// "node@front1"), or else on each front of c's farm.
func (c Claim) binds(e Endpoint) []bind {
	every := e.Address == AnyAddress || strings.HasPrefix(e.Address, AnyAddress+"@")
	nodes := c.nodes
	if _, node, ok := strings.Cut(e.Address, "@"); ok {
		nodes = []string{node}
	} else if nodes == nil {
		nodes = []string{""}
	}
	out := make([]bind, len(nodes))
	for i, n := range nodes {
		out[i] = bind{node: n, port: e.Port, every: every}
	}
	return out
}

// Resolve grants claims oldest first (by creation, then key) and refuses,
// whole, each claim that asks for a hostname already granted on one of its
// endpoints, for an endpoint already granted with the other protocol, or
// for a port of a front bound on every address where it is already bound
// on a given one, or the reverse.
// The established object keeps serving; the newcomer is told why.
func Resolve(claims []Claim) map[string]Conflict {
	order := slices.Clone(claims)
	slices.SortFunc(order, func(a, b Claim) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	g := grants{tls: map[spot]bool{}, setBy: map[spot]string{}, names: map[spot]map[string]string{}, binds: map[bind]holder{}}
	refused := map[string]Conflict{}
	for _, c := range order {
		if conflict, bad := g.conflict(c); bad {
			refused[c.Key] = conflict
			continue
		}
		g.grant(c)
	}
	return refused
}

func (g grants) conflict(c Claim) (Conflict, bool) {
	for _, e := range c.Endpoints {
		for _, b := range c.binds(e) {
			other := b
			other.every = !b.every
			if h, taken := g.binds[other]; taken {
				return Conflict{With: h.key, Endpoint: h.endpoint}, true
			}
		}
		s := spot{e.Address, e.Port}
		isTLS, open := g.tls[s]
		if !open {
			continue
		}
		if isTLS != e.TLS {
			return Conflict{With: g.setBy[s], Endpoint: e}, true
		}
		for _, h := range c.Hostnames {
			if owner, taken := g.names[s][h]; taken {
				return Conflict{With: owner, Endpoint: e, Hostname: h}, true
			}
		}
	}
	return Conflict{}, false
}

func (g grants) grant(c Claim) {
	for _, e := range c.Endpoints {
		for _, b := range c.binds(e) {
			if _, taken := g.binds[b]; !taken {
				g.binds[b] = holder{key: c.Key, endpoint: e}
			}
		}
		s := spot{e.Address, e.Port}
		if _, open := g.tls[s]; !open {
			g.tls[s], g.setBy[s] = e.TLS, c.Key
			g.names[s] = map[string]string{}
		}
		for _, h := range c.Hostnames {
			g.names[s][h] = c.Key
		}
	}
}

// Claims are what Sites and WebFarms ask of the fronts: each Site of a
// farm in farms (by "namespace/name") its hostnames on its endpoints, and
// each farm without Sites every hostname of its endpoints. Keys are
// "Site namespace/name" and "WebFarm namespace/name".
//
// fronts, when not nil, maps each farm to its fronts' node names: an
// endpoint on every address is then one per front ("*@node"), so that two
// farms listening on every address clash only where they share a front,
// and so do a farm on every address and one on given addresses. One
// node's agent passes nil.
func Claims(farms map[string]*webfarmv1.WebFarm, sites []*webfarmv1.Site, addresses map[string]string, fronts map[string][]string) []Claim {
	out := claims(farms, sites, addresses)
	if fronts == nil {
		return out
	}
	for i := range out {
		out[i].Endpoints = perFront(out[i].Endpoints, fronts[out[i].farm])
		out[i].nodes = fronts[out[i].farm]
		if out[i].nodes == nil {
			out[i].nodes = []string{} // on no front
		}
	}
	return out
}

// perFront replaces each endpoint on every address, and each on the
// node's own address, by one per node.
func perFront(eps []Endpoint, nodes []string) []Endpoint {
	var out []Endpoint
	for _, e := range eps {
		if e.Address != AnyAddress && e.Address != NodeAddress {
			out = append(out, e)
			continue
		}
		for _, n := range nodes {
			out = append(out, Endpoint{Address: e.Address + "@" + n, Port: e.Port, TLS: e.TLS})
		}
	}
	return out
}

func claims(farms map[string]*webfarmv1.WebFarm, sites []*webfarmv1.Site, addresses map[string]string) []Claim {
	var out []Claim
	withSites := map[string]bool{}
	for _, s := range sites {
		farm := farms[FarmKey(s)]
		if farm == nil {
			continue
		}
		withSites[FarmKey(s)] = true
		out = append(out, Claim{
			Key: "Site " + s.Namespace + "/" + s.Name, Created: s.CreationTimestamp.Time, farm: FarmKey(s),
			Endpoints: SiteEndpoints(s, farm, addresses), Hostnames: Hostnames(s),
		})
	}
	for key, farm := range farms {
		if !withSites[key] {
			out = append(out, Claim{
				Key: "WebFarm " + key, Created: farm.CreationTimestamp.Time, farm: key,
				Endpoints: FarmEndpoints(farm, addresses), Hostnames: []string{""},
			})
		}
	}
	return out
}

// FarmKey is the "namespace/name" of the WebFarm serving s.
func FarmKey(s *webfarmv1.Site) string { return s.Namespace + "/" + s.Spec.WebFarmRef.Name }

// Hostnames are the site's hostnames as strings.
func Hostnames(s *webfarmv1.Site) []string {
	out := make([]string, len(s.Spec.Hostnames))
	for i, h := range s.Spec.Hostnames {
		out[i] = string(h)
	}
	return out
}
