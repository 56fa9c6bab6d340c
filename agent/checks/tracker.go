package checks

import (
	"time"

	"github.com/webfarm/webfarm/agent/risefall"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// Tracker is keepalived's track_script hysteresis for one check: rise
// passes in a row make it Passing, fall failures in a row make it Failing;
// a result against the trend resets the count. Unlike the serving checks
// it starts Unknown and stays so until rise passes or fall failures: a
// replica must prove itself before it is a candidate for a database
// address (the controller keeps an owner that reports Unknown).
type Tracker struct {
	Rise, Fall int

	state   webfarmv1.CheckState
	since   time.Time
	message string
	row     risefall.Counter
}

// Result is the state of a check after hysteresis.
type Result struct {
	State webfarmv1.CheckState
	// Message is what the last run saw.
	Message string
	// Since is when State last changed, or when tracking began.
	Since time.Time
}

// Observe records one run at now — err nil for a pass, message what it saw
// — and tells whether the state or the message changed.
func (t *Tracker) Observe(err error, message string, now time.Time) (Result, bool) {
	if t.state == "" {
		t.state, t.since = webfarmv1.CheckUnknown, now
	}
	if err != nil {
		message = err.Error()
	}
	trend := t.row.Observe(err == nil, t.Rise, t.Fall)
	// A new message is news too, so that the report says what the check
	// sees now (a replica promoted to primary passes all along); messages
	// carry no figures that change from run to run.
	news := message != t.message
	t.message = message
	next := t.state
	switch trend {
	case risefall.Up:
		next = webfarmv1.CheckPassing
	case risefall.Down:
		next = webfarmv1.CheckFailing
	}
	changed := next != t.state
	if changed {
		t.state, t.since = next, now
	}
	return t.Result(), changed || news
}

// Result is the current state.
func (t *Tracker) Result() Result {
	state := t.state
	if state == "" {
		state = webfarmv1.CheckUnknown
	}
	return Result{State: state, Message: t.message, Since: t.since}
}

// Summary is the state of a FailoverIP's checks together: Failing if one
// fails, else Unknown if one is unknown, else Passing (none: Passing).
func Summary(states []webfarmv1.CheckState) webfarmv1.CheckState {
	sum := webfarmv1.CheckPassing
	for _, s := range states {
		switch s {
		case webfarmv1.CheckFailing:
			return webfarmv1.CheckFailing
		case webfarmv1.CheckUnknown:
			sum = webfarmv1.CheckUnknown
		}
	}
	return sum
}
