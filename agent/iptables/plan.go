package iptables

import (
	"slices"
	"strings"
)

// table and hook say where the drain chain lives: DNAT of locally generated
// connections, which is how the node's own HAProxy checks the fronts.
const (
	table = "nat"
	hook  = "OUTPUT"
)

// jumpSpec is the rule that sends OUTPUT through the drain chain, without
// its "-A OUTPUT" head.
func jumpSpec(chain string) string {
	return "-m comment --comment " + quoteComment("drain rules of webfarm-agent") + " -j " + chain
}

// state is what the kernel holds for one family, as `iptables -S` prints it.
type state struct {
	// chainExists is false when the drain chain is missing.
	chainExists bool
	// chain holds the rules of the drain chain ("-A …" lines).
	chain []string
	// hook holds the rules of the built-in chain that jumps to ours.
	hook []string
}

// syncPayload returns the iptables-restore input that turns cur into the
// chain holding exactly want and one jump to it, or "" when cur is already
// there. Declaring the chain in a --noflush restore empties it before its
// rules are appended, so the whole chain is replaced in one transaction and
// nothing outside it is touched.
func syncPayload(chain string, cur state, want []Rule) string {
	lines := make([]string, len(want))
	for i, r := range want {
		lines[i] = ruleLine(chain, r)
	}
	rewrite := !cur.chainExists || !slices.Equal(cur.chain, lines)

	jump := jumpSpec(chain)
	jumps := 0
	for _, l := range cur.hook {
		if l == "-A "+hook+" "+jump {
			jumps++
		}
	}
	if !rewrite && jumps == 1 {
		return ""
	}

	var b strings.Builder
	b.WriteString("*" + table + "\n")
	if rewrite {
		b.WriteString(":" + chain + " - [0:0]\n")
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
	}
	if jumps != 1 {
		// Copies of our jump are ours too. Deleting them by rule number
		// could hit a foreign rule added since we read, and deleting by
		// spec takes the first; so delete them all and put one back first.
		for range jumps {
			b.WriteString("-D " + hook + " " + jump + "\n")
		}
		b.WriteString("-I " + hook + " 1 " + jump + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// cleanupPayload returns the iptables-restore input that removes every
// chain of the table whose name starts with prefix, and every rule of the
// hook chain that jumps to one of them, or "" when there is none. Nothing
// else is touched.
func cleanupPayload(prefix string, chains, hookRules []string) string {
	var ours []string
	for _, c := range chains {
		if strings.HasPrefix(c, prefix) {
			ours = append(ours, c)
		}
	}
	if len(ours) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("*" + table + "\n")
	for _, l := range hookRules {
		for _, c := range ours {
			// The target comes last in iptables -S output; a comment that
			// merely mentions the chain ends with a quote instead.
			if strings.HasPrefix(l, "-A "+hook+" ") && strings.HasSuffix(l, " -j "+c) {
				b.WriteString("-D" + strings.TrimPrefix(l, "-A") + "\n")
				break
			}
		}
	}
	// Flush all before deleting any: our chains may jump to each other.
	for _, c := range ours {
		b.WriteString(":" + c + " - [0:0]\n")
	}
	for _, c := range ours {
		b.WriteString("-X " + c + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}
