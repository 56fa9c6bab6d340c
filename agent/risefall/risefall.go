// Package risefall counts check results with keepalived's track_script
// hysteresis: rise passes in a row turn a check up, fall failures in a row
// turn it down, and a result against the trend starts the count over. The
// database checks (agent/checks) and the serving checks (agent/serving)
// both count this way; each keeps its own states.
package risefall

// Trend is what the results in a row call for.
type Trend int

const (
	// Hold: neither rise passes nor fall failures in a row yet; the state
	// stays.
	Hold Trend = iota
	// Up: rise passes in a row.
	Up
	// Down: fall failures in a row.
	Down
)

// Counter counts the results in a row of each kind. The zero value is
// ready.
type Counter struct {
	passes, fails int
}

// Observe counts one result and returns the trend it makes with rise and
// fall (each below 1 counts as 1).
func (c *Counter) Observe(ok bool, rise, fall int) Trend {
	if ok {
		c.passes, c.fails = c.passes+1, 0
	} else {
		c.passes, c.fails = 0, c.fails+1
	}
	switch {
	case c.passes >= max(rise, 1):
		return Up
	case c.fails >= max(fall, 1):
		return Down
	}
	return Hold
}
