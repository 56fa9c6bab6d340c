package iptables

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func rule(front string, drain, web uint16, comment string) Rule {
	return Rule{Front: netip.MustParseAddr(front), DrainPort: drain, WebPort: web, Comment: comment}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name   string
		want   []Rule
		family Family
		out    []Rule
	}{
		{
			name:   "none",
			family: IPv4,
		},
		{
			name: "sorted by front then ports",
			want: []Rule{
				rule("10.0.0.2", 5381, 5380, "a"),
				rule("10.0.0.1", 5382, 5380, "b"),
				rule("10.0.0.1", 5381, 5380, "c"),
			},
			family: IPv4,
			out: []Rule{
				rule("10.0.0.1", 5381, 5380, "c"),
				rule("10.0.0.1", 5382, 5380, "b"),
				rule("10.0.0.2", 5381, 5380, "a"),
			},
		},
		{
			name: "exact duplicates kept once",
			want: []Rule{
				rule("10.0.0.1", 5381, 5380, "shop front1"),
				rule("10.0.0.1", 5381, 5380, "shop front1"),
			},
			family: IPv4,
			out:    []Rule{rule("10.0.0.1", 5381, 5380, "shop front1")},
		},
		{
			name: "same front and drain port: the first in order wins",
			want: []Rule{
				rule("10.0.0.1", 5381, 8080, "b"),
				rule("10.0.0.1", 5381, 5380, "z"),
				rule("10.0.0.1", 5381, 5380, "a"),
			},
			family: IPv4,
			out:    []Rule{rule("10.0.0.1", 5381, 5380, "a")},
		},
		{
			name: "only the asked family",
			want: []Rule{
				rule("fd00::2", 5381, 5380, "v6"),
				rule("10.0.0.1", 5381, 5380, "v4"),
				rule("fd00::1", 5381, 5380, "v6"),
			},
			family: IPv6,
			out: []Rule{
				rule("fd00::1", 5381, 5380, "v6"),
				rule("fd00::2", 5381, 5380, "v6"),
			},
		},
		{
			name:   "IPv4-mapped IPv6 counts as IPv4",
			want:   []Rule{rule("::ffff:10.0.0.1", 5381, 5380, "")},
			family: IPv4,
			out:    []Rule{rule("10.0.0.1", 5381, 5380, "")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := normalize(tt.want, tt.family)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.out) {
				t.Errorf("normalize() = %v, want %v", got, tt.out)
			}
		})
	}
}

func TestNormalizeRejectsInvalidRules(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		err  string
	}{
		{"no address", Rule{DrainPort: 5381, WebPort: 5380}, "front address missing"},
		{"unspecified", rule("0.0.0.0", 5381, 5380, ""), "unspecified"},
		{"zone", rule("fe80::1%eth0", 5381, 5380, ""), "zone"},
		{"no drain port", rule("10.0.0.1", 0, 5380, ""), "must be set"},
		{"no web port", rule("10.0.0.1", 5381, 0, ""), "must be set"},
		{"same ports", rule("10.0.0.1", 5380, 5380, ""), "both 5380"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			valid := rule("10.0.0.9", 5381, 5380, "")
			// The invalid rule fails the call whatever family is asked.
			for _, f := range []Family{IPv4, IPv6} {
				_, err := normalize([]Rule{valid, tt.rule}, f)
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "rule 1:") {
					t.Errorf("normalize(%s) error = %v, want rule 1: …%s…", f, err, tt.err)
				}
			}
		})
	}
}

func TestRuleLine(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		line string
	}{
		{
			name: "IPv4",
			rule: rule("10.0.0.1", 5381, 5380, "default/shop front1"),
			line: `-A WEBFARM-DRAIN -d 10.0.0.1/32 -p tcp -m comment --comment "webfarm: default/shop front1" -m tcp --dport 5381 -j DNAT --to-destination 10.0.0.1:5380`,
		},
		{
			name: "IPv6 destination in brackets",
			rule: rule("fd00::1", 2381, 2380, "default/shop front2"),
			line: `-A WEBFARM-DRAIN -d fd00::1/128 -p tcp -m comment --comment "webfarm: default/shop front2" -m tcp --dport 2381 -j DNAT --to-destination [fd00::1]:2380`,
		},
		{
			name: "no comment",
			rule: rule("10.0.0.1", 5381, 5380, ""),
			line: `-A WEBFARM-DRAIN -d 10.0.0.1/32 -p tcp -m comment --comment "webfarm:" -m tcp --dport 5381 -j DNAT --to-destination 10.0.0.1:5380`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ruleLine(Chain, tt.rule); got != tt.line {
				t.Errorf("ruleLine() =\n%s\nwant\n%s", got, tt.line)
			}
		})
	}
}

func TestQuoteComment(t *testing.T) {
	tests := []struct {
		text, quoted string
	}{
		{"default/shop front1", `"webfarm: default/shop front1"`},
		{"", `"webfarm:"`},
		{"  padded  ", `"webfarm: padded"`},
		{`say "hi"; rm -rf \ $x` + "\n", `"webfarm: say _hi__ rm -rf _ _x"`},
		{"nœud", `"webfarm: n_ud"`},
		{strings.Repeat("x", 300), `"webfarm: ` + strings.Repeat("x", maxComment-len("webfarm: ")) + `"`},
	}
	for _, tt := range tests {
		if got := quoteComment(tt.text); got != tt.quoted {
			t.Errorf("quoteComment(%q) = %s, want %s", tt.text, got, tt.quoted)
		}
	}
}
