package testbed

import (
	"strings"
	"testing"
	"time"
)

func TestARPGap(t *testing.T) {
	t0 := time.Unix(1764000000, 0)
	ev := func(ms int, front string) ARPEvent {
		return ARPEvent{Time: t0.Add(time.Duration(ms) * time.Millisecond), Front: front}
	}
	since := t0.Add(250 * time.Millisecond)
	tests := []struct {
		name   string
		events []ARPEvent
		want   time.Duration
		ok     bool
	}{
		{"old answers until the act, new after", []ARPEvent{ev(0, "a"), ev(100, "a"), ev(200, "a"), ev(900, "b"), ev(1000, "b")}, 700 * time.Millisecond, true},
		{"old answers after the act too", []ARPEvent{ev(200, "a"), ev(300, "a"), ev(400, "b")}, 100 * time.Millisecond, true},
		{"another front before the act is not the move", []ARPEvent{ev(0, "b"), ev(200, "a"), ev(600, "c")}, 400 * time.Millisecond, true},
		{"old never seen: from the act", []ARPEvent{ev(450, "b")}, 200 * time.Millisecond, true},
		{"nobody else claims it", []ARPEvent{ev(0, "a"), ev(300, "a")}, 0, false},
		{"an unknown MAC counts as another claimant", []ARPEvent{ev(200, "a"), ev(260, "")}, 60 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := arpGap(tt.events, "a", since)
			if got != tt.want || ok != tt.ok {
				t.Errorf("arpGap = %s, %t; want %s, %t", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestSummarizeTrials(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	trials := []Trial{
		{System: "k", Settings: "s", Kind: TrialHardLoss, LoadGap: ms(300), ARPGap: ms(200), ARPGapOK: true, Failed: 2, Requests: 100, FailedAfterMove: 1},
		{System: "w", Settings: "s", Kind: TrialHardLoss, LoadGap: ms(900), Failed: 5, Requests: 100, TwoAnswerers: 1},
		{System: "k", Settings: "s", Kind: TrialHardLoss, LoadGap: ms(100), ARPGap: ms(400), ARPGapOK: true, Failed: 1, Requests: 100},
		{System: "k", Settings: "s", Kind: TrialHardLoss, LoadGap: ms(500), Failed: 9, Requests: 100, TwoAnswerers: 3, FailedAfterMove: 4},
		{System: "k", Settings: "s", Kind: TrialHardLoss, LoadGap: ms(9000), Failed: 40, Requests: 100, Err: "did not move"},
	}
	got := SummarizeTrials(trials)
	if len(got) != 2 || got[0].System != "k" || got[1].System != "w" {
		t.Fatalf("SummarizeTrials: %+v, want k then w", got)
	}
	k := got[0]
	want := TrialSummary{System: "k", Settings: "s", Kind: TrialHardLoss, Trials: 4, Completed: 3,
		LoadGap: Spread{3, ms(300), ms(500)}, ARPGap: Spread{2, ms(400), ms(400)},
		Failed: 52, MostFailed: 40, Requests: 400, TwoAnswerers: 3, FailedAfterMove: 5, MostFailedAfterMove: 4}
	if k != want {
		t.Errorf("keepalived summary:\n got %+v\nwant %+v", k, want)
	}
	if got[1].ARPGap.N != 0 || got[1].ARPGap.String() != "-" {
		t.Errorf("no ARP gap measured: %+v, %q", got[1].ARPGap, got[1].ARPGap.String())
	}
	var b strings.Builder
	WriteTrialTable(&b, trials)
	if !strings.Contains(b.String(), "3/4") || !strings.Contains(b.String(), "300ms / 500ms") || !strings.Contains(b.String(), "5, max 4") {
		t.Errorf("table lacks k's row:\n%s", b.String())
	}
}

func TestClaimSequence(t *testing.T) {
	tests := []struct {
		claims []string
		want   string
	}{
		{nil, ""},
		{[]string{"front1", "front3"}, "front1 -> front3"},
		{[]string{"a", "b", "a", "b", "a", "b", "a", "b", "a", "b"}, "a -> b -> a -> b -> a -> b -> a -> b -> ... (9 changes of claimant in all)"},
	}
	for _, tt := range tests {
		if got := claimSequence(tt.claims); got != tt.want {
			t.Errorf("claimSequence(%v) = %q, want %q", tt.claims, got, tt.want)
		}
	}
}
