package checks

import (
	"errors"
	"testing"
	"time"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

const (
	U = webfarmv1.CheckUnknown
	P = webfarmv1.CheckPassing
	F = webfarmv1.CheckFailing
)

// TestTracker feeds runs ('+' pass, '-' failure, 't' timeout) and checks
// the state after each.
func TestTracker(t *testing.T) {
	for _, tt := range []struct {
		name       string
		rise, fall int
		runs       string
		want       []webfarmv1.CheckState
	}{
		{"unknown until rise", 3, 2, "+++", []webfarmv1.CheckState{U, U, P}},
		{"unknown until fall", 2, 3, "---", []webfarmv1.CheckState{U, U, F}},
		{"a timeout is a failure", 2, 2, "tt", []webfarmv1.CheckState{U, F}},
		{"fall after passing", 1, 2, "+-+--", []webfarmv1.CheckState{P, P, P, P, F}},
		{"rise after failing", 2, 1, "-+-++", []webfarmv1.CheckState{F, F, F, F, P}},
		{"flapping stays where it was", 2, 2, "++-+-+-+", []webfarmv1.CheckState{U, P, P, P, P, P, P, P}},
		{"flapping never rises", 2, 2, "--+-+-+-", []webfarmv1.CheckState{U, F, F, F, F, F, F, F}},
		{"flapping from unknown stays unknown", 2, 2, "+-+-+-", []webfarmv1.CheckState{U, U, U, U, U, U}},
		{"rise and fall of 1 follow every run", 1, 1, "+-+", []webfarmv1.CheckState{P, F, P}},
		{"zero counts act as 1", 0, 0, "-+", []webfarmv1.CheckState{F, P}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := &Tracker{Rise: tt.rise, Fall: tt.fall}
			now := time.Unix(1000, 0)
			prev := U
			for i, c := range tt.runs {
				var err error
				switch c {
				case '-':
					err = errors.New("refused")
				case 't':
					err = errors.New("timed out")
				}
				now = now.Add(time.Second)
				r, changed := tr.Observe(err, "ok", now)
				if r.State != tt.want[i] {
					t.Fatalf("after run %d (%q): %s, want %s", i+1, tt.runs[:i+1], r.State, tt.want[i])
				}
				if r.State != prev && !changed {
					t.Errorf("run %d: changed = false, state %s -> %s", i+1, prev, r.State)
				}
				if r.State != prev && !r.Since.Equal(now) {
					t.Errorf("run %d: since = %v, want %v", i+1, r.Since, now)
				}
				prev = r.State
			}
		})
	}
}

func TestSummary(t *testing.T) {
	for _, tt := range []struct {
		in   []webfarmv1.CheckState
		want webfarmv1.CheckState
	}{
		{nil, P},
		{[]webfarmv1.CheckState{P, P}, P},
		{[]webfarmv1.CheckState{P, U}, U},
		{[]webfarmv1.CheckState{U, F, P}, F},
	} {
		if got := Summary(tt.in); got != tt.want {
			t.Errorf("Summary(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestTrackerMessages: a new message is reported, the same one is not.
func TestTrackerMessages(t *testing.T) {
	tr := &Tracker{Rise: 1, Fall: 1}
	now := time.Unix(1000, 0)
	for i, step := range []struct {
		msg     string
		changed bool
	}{{"promotable replica", true}, {"promotable replica", false}, {"primary (read_only=0)", true}, {"primary (read_only=0)", false}} {
		if _, changed := tr.Observe(nil, step.msg, now); changed != step.changed {
			t.Errorf("run %d (%q): changed = %v, want %v", i+1, step.msg, changed, step.changed)
		}
	}
}
