package haproxy

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// anyAddress is the address of a farm without failover addresses: HAProxy
// listens on every address of the node.
const anyAddress = "*"

// noSiteBackend answers 404 to a host that no site of a frontend names,
// when several farms share it and none serves every host.
const noSiteBackend = "webfarm_no_site"

// endpoint is one address and port where HAProxy accepts clients.
type endpoint struct {
	addr string // an address, or anyAddress
	port int32
	tls  bool
}

// frontendPlan is one frontend: every farm and site served on one address
// and port.
type frontendPlan struct {
	name           string
	endpoint       endpoint
	binds          []string
	maxConn        int64
	clientMs       int64
	checkPaths     []string
	farms          []*farmPlan // sorted by key, each once
	sites          []sitePlan  // sorted by key
	defaultBackend string      // noSiteBackend when no farm serves every host
	errorFarm      *farmPlan   // whose error pages the frontend answers with
}

// frontendName is "http_<address>_<port>" or "https_...", with "any" for
// every address and '-' for the ':' of IPv6.
func frontendName(e endpoint) string {
	scheme, addr := "http", e.addr
	if e.tls {
		scheme = "https"
	}
	if addr == anyAddress {
		addr = "any"
	}
	return fmt.Sprintf("%s_%s_%d", scheme, strings.ReplaceAll(addr, ":", "-"), e.port)
}

// crtListFile is the crt-list of a TLS frontend.
func crtListFile(fe *frontendPlan) string { return certsDir + "/" + fe.name + ".list" }

// planFrontends groups farms and sites by endpoint. Conflicts are errors:
// the agent resolves them before (internal/sites), so that the newcomer,
// not the whole node, is left out.
func planFrontends(farms []farmPlan, sites []sitePlan, ipv4Only bool) ([]*frontendPlan, error) {
	byEndpoint := map[endpoint]*frontendPlan{}
	add := func(e endpoint, farm *farmPlan) *frontendPlan {
		fe := byEndpoint[e]
		if fe == nil {
			fe = &frontendPlan{name: frontendName(e), endpoint: e}
			byEndpoint[e] = fe
		}
		if !slices.Contains(fe.farms, farm) {
			fe.farms = append(fe.farms, farm)
			fe.maxConn += int64(farm.maxConn)
			fe.clientMs = max(fe.clientMs, farm.clientMs)
		}
		return fe
	}
	byBackend := map[string]*farmPlan{}
	for i := range farms {
		byBackend[farms[i].name] = &farms[i]
		for _, a := range usableAddrs(farms[i].addrs, ipv4Only) {
			add(endpoint{a, farms[i].port, false}, &farms[i])
		}
	}
	for _, s := range sites {
		farm := byBackend[s.backend]
		for _, a := range usableAddrs(farm.addrs, ipv4Only) {
			fe := add(endpoint{a, farm.port, false}, farm)
			fe.sites = append(fe.sites, s)
			if s.tlsPort != 0 {
				fe := add(endpoint{a, s.tlsPort, true}, farm)
				fe.sites = append(fe.sites, s)
			}
		}
	}
	fes := make([]*frontendPlan, 0, len(byEndpoint))
	for _, fe := range byEndpoint {
		fes = append(fes, fe)
	}
	slices.SortFunc(fes, func(a, b *frontendPlan) int {
		return cmp.Or(cmp.Compare(a.endpoint.port, b.endpoint.port), strings.Compare(a.endpoint.addr, b.endpoint.addr))
	})
	for _, fe := range fes {
		if err := finishFrontend(fe, byEndpoint, sites); err != nil {
			return nil, err
		}
	}
	addLoopback(fes)
	if ipv4Only {
		dropIPv6Any(fes)
	}
	return fes, nil
}

func usableAddrs(addrs []string, ipv4Only bool) []string {
	if !ipv4Only {
		return addrs
	}
	return slices.DeleteFunc(slices.Clone(addrs), func(a string) bool { return a != anyAddress && strings.Contains(a, ":") })
}

// finishFrontend checks one frontend's claims and picks its default
// backend: the farm without sites, or the only farm of its sites.
func finishFrontend(fe *frontendPlan, all map[endpoint]*frontendPlan, sites []sitePlan) error {
	e := fe.endpoint
	if other, clash := all[endpoint{e.addr, e.port, !e.tls}]; clash {
		return fmt.Errorf("%s: served in plain HTTP and over TLS (%s and %s)", endpointString(e), farmKeys(fe), farmKeys(other))
	}
	slices.SortFunc(fe.farms, func(a, b *farmPlan) int { return strings.Compare(a.key, b.key) })
	hosts := map[string]string{}
	for _, s := range fe.sites {
		for _, h := range append(slices.Clone(s.exact), s.wild...) {
			if other, taken := hosts[h]; taken {
				return fmt.Errorf("%s: hostname %s claimed by sites %s and %s", endpointString(e), h, other, s.key)
			}
			hosts[h] = s.key
		}
	}
	var siteless []*farmPlan
	if !e.tls {
		for _, f := range fe.farms {
			if !slices.ContainsFunc(sites, func(s sitePlan) bool { return s.backend == f.name }) {
				siteless = append(siteless, f)
			}
		}
	}
	switch {
	case len(siteless) > 1:
		return fmt.Errorf("%s: farms %s and %s both serve every hostname", endpointString(e), siteless[0].key, siteless[1].key)
	case len(siteless) == 1:
		fe.errorFarm = siteless[0]
	case len(fe.farms) == 1:
		fe.errorFarm = fe.farms[0]
	}
	fe.defaultBackend = noSiteBackend
	if fe.errorFarm != nil {
		fe.defaultBackend = fe.errorFarm.name
	}
	for _, f := range fe.farms {
		if !slices.Contains(fe.checkPaths, f.checkPath) {
			fe.checkPaths = append(fe.checkPaths, f.checkPath)
		}
	}
	slices.Sort(fe.checkPaths)
	fe.binds = binds(e)
	return nil
}

func binds(e endpoint) []string {
	var b []string
	switch {
	case e.addr == anyAddress:
		b = []string{fmt.Sprintf("0.0.0.0:%d", e.port), fmt.Sprintf("[::]:%d v6only", e.port)}
	default:
		// transparent: HAProxy binds with IP_TRANSPARENT, or IP_FREEBIND
		// without the capability (its "freebind"), so that a front that
		// does not hold the address is ready the instant it gets it.
		b = []string{netip.AddrPortFrom(netip.MustParseAddr(e.addr), uint16(e.port)).String() + " transparent"}
	}
	return b
}

// addLoopback makes the first plain frontend of each port also listen on
// 127.0.0.1, where the agent's serving check asks it, unless a frontend of
// that port listens on every address.
func addLoopback(fes []*frontendPlan) {
	done := map[int32]bool{}
	for _, fe := range fes {
		if fe.endpoint.addr == anyAddress {
			done[fe.endpoint.port] = true
		}
	}
	for _, fe := range fes {
		if fe.endpoint.tls || done[fe.endpoint.port] {
			continue
		}
		fe.binds = append(fe.binds, fmt.Sprintf("127.0.0.1:%d", fe.endpoint.port))
		done[fe.endpoint.port] = true
	}
}

// dropIPv6Any removes the IPv6 socket of frontends on every address, for
// nodes without IPv6.
func dropIPv6Any(fes []*frontendPlan) {
	for _, fe := range fes {
		fe.binds = slices.DeleteFunc(fe.binds, func(b string) bool { return strings.HasPrefix(b, "[::]:") })
	}
}

func endpointString(e endpoint) string {
	if e.addr == anyAddress {
		return fmt.Sprintf("*:%d", e.port)
	}
	return netip.AddrPortFrom(netip.MustParseAddr(e.addr), uint16(e.port)).String()
}

func farmKeys(fe *frontendPlan) string {
	keys := make([]string, len(fe.farms))
	for i, f := range fe.farms {
		keys[i] = f.key
	}
	return strings.Join(keys, ", ")
}

// crtList is a TLS frontend's crt-list: each site's certificate with the
// names it is chosen for by SNI.
func crtList(fe *frontendPlan) []byte {
	var b strings.Builder
	for _, s := range fe.sites {
		fmt.Fprintf(&b, "%s %s\n", s.certFile, strings.Join(append(slices.Clone(s.exact), s.wild...), " "))
	}
	return []byte(b.String())
}
