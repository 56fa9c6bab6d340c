package iptables

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Rule maps the drain port of one front to its web port: while the rule is
// in the chain, HAProxy's check of the front's main server on DrainPort
// reaches the web server on WebPort; without it the check fails and the
// front drains.
type Rule struct {
	// Front is the address of the front. IPv4-mapped IPv6 addresses count
	// as IPv4.
	Front netip.Addr
	// DrainPort is the port the main server is checked on.
	DrainPort uint16
	// WebPort is the port the front's web server listens on.
	WebPort uint16
	// Comment tells a human reading iptables-save what the rule is for,
	// e.g. "default/shop front1". It is written as "webfarm: <Comment>";
	// characters other than letters, digits and " ._/:-" become "_".
	Comment string
}

// Family is an IP address family; each has its own tables and tools.
type Family int

const (
	// IPv4 rules go to iptables.
	IPv4 Family = iota
	// IPv6 rules go to ip6tables.
	IPv6
)

func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// FamilyOf returns the family whose tables hold rules for addr.
func FamilyOf(addr netip.Addr) Family {
	if addr.Unmap().Is4() {
		return IPv4
	}
	return IPv6
}

// commentPrefix starts every comment this package writes.
const commentPrefix = "webfarm:"

// maxComment keeps comments well under the kernel's 256-byte limit.
const maxComment = 200

// normalize validates want and returns the rules of family f in chain
// order: sorted, with one rule per front and drain port. When two rules
// share a front and drain port only the first in that order is kept: the
// kernel would never reach the second one anyway.
func normalize(want []Rule, f Family) ([]Rule, error) {
	var rules []Rule
	for i, r := range want {
		r.Front = r.Front.Unmap()
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("rule %d: %w", i, err)
		}
		if FamilyOf(r.Front) == f {
			rules = append(rules, r)
		}
	}
	slices.SortFunc(rules, func(a, b Rule) int {
		return cmp.Or(
			a.Front.Compare(b.Front),
			cmp.Compare(a.DrainPort, b.DrainPort),
			cmp.Compare(a.WebPort, b.WebPort),
			strings.Compare(a.Comment, b.Comment),
		)
	})
	return slices.CompactFunc(rules, func(a, b Rule) bool {
		return a.Front == b.Front && a.DrainPort == b.DrainPort
	}), nil
}

func (r Rule) validate() error {
	switch {
	case !r.Front.IsValid():
		return fmt.Errorf("front address missing")
	case r.Front.IsUnspecified():
		return fmt.Errorf("front address %s is unspecified", r.Front)
	case r.Front.Zone() != "":
		return fmt.Errorf("front address %s has a zone", r.Front)
	case r.DrainPort == 0 || r.WebPort == 0:
		return fmt.Errorf("front %s: drain port %d and web port %d must be set", r.Front, r.DrainPort, r.WebPort)
	case r.DrainPort == r.WebPort:
		return fmt.Errorf("front %s: drain port and web port are both %d", r.Front, r.DrainPort)
	}
	return nil
}

// ruleLine renders r exactly as `iptables -S` prints it back, so that the
// chain read from the kernel can be compared line by line with the wanted
// one.
func ruleLine(chain string, r Rule) string {
	return fmt.Sprintf("-A %s -d %s -p tcp -m comment --comment %s -m tcp --dport %d -j DNAT --to-destination %s",
		chain,
		netip.PrefixFrom(r.Front, r.Front.BitLen()),
		quoteComment(r.Comment),
		r.DrainPort,
		netip.AddrPortFrom(r.Front, r.WebPort))
}

// quoteComment prefixes and quotes a comment. Only characters that need no
// escaping are kept, so the text survives iptables-restore and reads back
// unchanged from iptables -S.
func quoteComment(text string) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			strings.ContainsRune(" ._/:-", r):
			return r
		}
		return '_'
	}, strings.TrimSpace(text))
	comment := strings.TrimSpace(commentPrefix + " " + safe)
	if len(comment) > maxComment {
		comment = strings.TrimSpace(comment[:maxComment])
	}
	return `"` + comment + `"`
}
