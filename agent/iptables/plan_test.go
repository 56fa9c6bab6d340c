package iptables

import (
	"testing"
)

func TestSyncPayload(t *testing.T) {
	r1 := rule("10.0.0.1", 5381, 5380, "shop front1")
	r2 := rule("10.0.0.2", 5381, 5380, "shop front2")
	line1, line2 := ruleLine(Chain, r1), ruleLine(Chain, r2)
	jump := "-A OUTPUT " + jumpSpec(Chain)
	foreign := "-A OUTPUT -d 192.0.2.1/32 -j RETURN"

	tests := []struct {
		name    string
		cur     state
		want    []Rule
		payload string
	}{
		{
			name: "in sync: nothing to write",
			cur:  state{chainExists: true, chain: []string{line1, line2}, hook: []string{foreign, jump}},
			want: []Rule{r1, r2},
		},
		{
			name: "empty and in sync",
			cur:  state{chainExists: true, hook: []string{jump}},
		},
		{
			name: "nothing yet: chain, rules and jump in one transaction",
			cur:  state{hook: []string{foreign}},
			want: []Rule{r1, r2},
			payload: "*nat\n:WEBFARM-DRAIN - [0:0]\n" + line1 + "\n" + line2 + "\n" +
				"-I OUTPUT 1 " + jumpSpec(Chain) + "\nCOMMIT\n",
		},
		{
			name:    "missing chain is created even when empty",
			cur:     state{hook: []string{jump}},
			payload: "*nat\n:WEBFARM-DRAIN - [0:0]\nCOMMIT\n",
		},
		{
			name:    "flushed chain is refilled",
			cur:     state{chainExists: true, hook: []string{jump}},
			want:    []Rule{r1},
			payload: "*nat\n:WEBFARM-DRAIN - [0:0]\n" + line1 + "\nCOMMIT\n",
		},
		{
			name:    "drained front: chain rewritten without it",
			cur:     state{chainExists: true, chain: []string{line1, line2}, hook: []string{jump}},
			want:    []Rule{r2},
			payload: "*nat\n:WEBFARM-DRAIN - [0:0]\n" + line2 + "\nCOMMIT\n",
		},
		{
			name:    "rules out of order are rewritten",
			cur:     state{chainExists: true, chain: []string{line2, line1}, hook: []string{jump}},
			want:    []Rule{r1, r2},
			payload: "*nat\n:WEBFARM-DRAIN - [0:0]\n" + line1 + "\n" + line2 + "\nCOMMIT\n",
		},
		{
			name:    "deleted jump is inserted back first in OUTPUT",
			cur:     state{chainExists: true, chain: []string{line1}, hook: []string{foreign}},
			want:    []Rule{r1},
			payload: "*nat\n-I OUTPUT 1 " + jumpSpec(Chain) + "\nCOMMIT\n",
		},
		{
			name: "copies of the jump are replaced by one, first in OUTPUT",
			cur:  state{chainExists: true, chain: []string{line1}, hook: []string{foreign, jump, jump}},
			want: []Rule{r1},
			payload: "*nat\n-D OUTPUT " + jumpSpec(Chain) + "\n-D OUTPUT " + jumpSpec(Chain) +
				"\n-I OUTPUT 1 " + jumpSpec(Chain) + "\nCOMMIT\n",
		},
		{
			name: "a foreign jump to our chain is not ours: ours is still added",
			cur: state{chainExists: true, chain: []string{line1},
				hook: []string{"-A OUTPUT -j WEBFARM-DRAIN"}},
			want:    []Rule{r1},
			payload: "*nat\n-I OUTPUT 1 " + jumpSpec(Chain) + "\nCOMMIT\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := syncPayload(Chain, tt.cur, tt.want); got != tt.payload {
				t.Errorf("syncPayload() =\n%s\nwant\n%s", got, tt.payload)
			}
		})
	}
}

func TestCleanupPayload(t *testing.T) {
	jump := "-A OUTPUT " + jumpSpec(Chain)
	builtins := []string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}

	tests := []struct {
		name    string
		chains  []string
		hook    []string
		payload string
	}{
		{
			name:   "nothing of ours",
			chains: append(builtins, "KUBE-SERVICES"),
			hook:   []string{"-A OUTPUT -j KUBE-SERVICES"},
		},
		{
			name:   "our jump and chain; foreign rules stay",
			chains: append(builtins, "KUBE-SERVICES", Chain),
			hook: []string{
				"-A OUTPUT -j KUBE-SERVICES",
				jump,
				`-A OUTPUT -m comment --comment "see -j WEBFARM-DRAIN" -j ACCEPT`,
			},
			payload: "*nat\n-D OUTPUT " + jumpSpec(Chain) + "\n" +
				":WEBFARM-DRAIN - [0:0]\n-X WEBFARM-DRAIN\nCOMMIT\n",
		},
		{
			name:   "every jump to every chain of ours, chains flushed before deleted",
			chains: append(builtins, Chain, Chain+"-OLD"),
			hook:   []string{"-A OUTPUT -j WEBFARM-DRAIN-OLD", jump, "-A OUTPUT -d 10.0.0.1/32 -j WEBFARM-DRAIN"},
			payload: "*nat\n-D OUTPUT -j WEBFARM-DRAIN-OLD\n-D OUTPUT " + jumpSpec(Chain) + "\n" +
				"-D OUTPUT -d 10.0.0.1/32 -j WEBFARM-DRAIN\n" +
				":WEBFARM-DRAIN - [0:0]\n:WEBFARM-DRAIN-OLD - [0:0]\n" +
				"-X WEBFARM-DRAIN\n-X WEBFARM-DRAIN-OLD\nCOMMIT\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cleanupPayload(ChainPrefix, tt.chains, tt.hook); got != tt.payload {
				t.Errorf("cleanupPayload() =\n%s\nwant\n%s", got, tt.payload)
			}
		})
	}
}
