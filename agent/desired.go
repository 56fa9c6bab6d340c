package agent

import (
	"fmt"
	"net/netip"

	"github.com/webfarm/webfarm/agent/iptables"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// drainRules returns the DNAT rules this node needs: for every front of every
// farm on the node that is not draining, its drain port mapped to its web
// port. A front with an unusable address is skipped and reported, and so is
// a front that held says must stay drained (its uploads are behind).
func drainRules(s *snapshot, held func(*snapshot, string, *webfarmv1.FrontNode) bool) ([]iptables.Rule, []error) {
	var rules []iptables.Rule
	var problems []error
	for _, farmKey := range s.farmKeys() {
		backend := s.farms[farmKey].Spec.Backend
		for _, front := range s.frontsOf(farmKey) {
			if front.Spec.DrainRequested || held(s, farmKey, front) {
				continue
			}
			addr, err := netip.ParseAddr(front.Spec.Address)
			if err != nil {
				problems = append(problems, fmt.Errorf("front %s: spec.address %q: %w", front.Name, front.Spec.Address, err))
				continue
			}
			rules = append(rules, iptables.Rule{
				Front:     addr,
				DrainPort: uint16(backend.DrainPort),
				WebPort:   uint16(backend.WebPort),
				Comment:   farmKey + " " + front.Name,
			})
		}
	}
	return rules, problems
}
