package testbed

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// TrialSummary is the figures of the trials of one system, settings and
// kind.
type TrialSummary struct {
	System, Settings, Kind string
	// Trials is how many ran; Completed how many moved the address.
	Trials, Completed int
	// LoadGap and ARPGap are over the completed trials; ARP gaps only
	// where another front was seen claiming the address.
	LoadGap, ARPGap Spread
	// Failed is the failed requests: total, and the most in one trial.
	Failed, MostFailed, Requests int
	// FailedAfterMove is the failed requests after the move: total, and
	// the most in one trial.
	FailedAfterMove, MostFailedAfterMove int
	// TwoAnswerers is the total over every trial, completed or not.
	TwoAnswerers int
}

// Spread is the median and the max of some durations.
type Spread struct {
	N           int
	Median, Max time.Duration
}

func spread(ds []time.Duration) Spread {
	if len(ds) == 0 {
		return Spread{}
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return Spread{N: len(ds), Median: ds[len(ds)/2], Max: ds[len(ds)-1]}
}

func (s Spread) String() string {
	if s.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%s / %s", round(s.Median), round(s.Max))
}

// SummarizeTrials groups trials by system, settings and kind, in the order
// they first appear.
func SummarizeTrials(trials []Trial) []TrialSummary {
	var out []TrialSummary
	type gaps struct{ load, arp []time.Duration }
	var all []gaps
	for _, t := range trials {
		i := slices.IndexFunc(out, func(s TrialSummary) bool {
			return s.System == t.System && s.Settings == t.Settings && s.Kind == t.Kind
		})
		if i < 0 {
			out = append(out, TrialSummary{System: t.System, Settings: t.Settings, Kind: t.Kind})
			all = append(all, gaps{})
			i = len(out) - 1
		}
		s := &out[i]
		s.Trials++
		s.TwoAnswerers += t.TwoAnswerers
		s.Failed += t.Failed
		s.MostFailed = max(s.MostFailed, t.Failed)
		s.Requests += t.Requests
		s.FailedAfterMove += t.FailedAfterMove
		s.MostFailedAfterMove = max(s.MostFailedAfterMove, t.FailedAfterMove)
		if t.Err != "" {
			continue
		}
		s.Completed++
		all[i].load = append(all[i].load, t.LoadGap)
		if t.ARPGapOK {
			all[i].arp = append(all[i].arp, t.ARPGap)
		}
	}
	for i := range out {
		out[i].LoadGap, out[i].ARPGap = spread(all[i].load), spread(all[i].arp)
	}
	return out
}

// WriteTrialTable prints one line per system, settings and kind.
func WriteTrialTable(w io.Writer, trials []Trial) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SYSTEM\tSETTINGS\tTRIAL\tDONE\tLOAD GAP med / max\tARP GAP med / max\tFAILED REQ (total, max)\tAFTER THE MOVE (total, max)\tTWO ANSWERERS")
	for _, s := range SummarizeTrials(trials) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\t%d of %d, max %d\t%d, max %d\t%d\n",
			s.System, s.Settings, s.Kind, s.Completed, s.Trials, s.LoadGap, s.ARPGap,
			s.Failed, s.Requests, s.MostFailed, s.FailedAfterMove, s.MostFailedAfterMove, s.TwoAnswerers)
	}
	tw.Flush()
	fmt.Fprintf(w, `
LOAD GAP: the longest run of failed requests of the client's steady load (%d/s,
  each a new connection, 1 s timeout): from the send time of the last answered
  request before it to that of the first answered after it.
ARP GAP: from the last ARP claim of the address (answer to the client's probe
  every %s, or gratuitous ARP) by the old holder's MAC to the first by another.
TWO ANSWERERS: pairs of claims by two MACs less than %s apart, seen from the
  client namespace (ARPWatcher.Conflicts).
AFTER THE MOVE: failed requests sent after the new holder first claimed the
  address, over the next %s of answers: those a dead front still taking new
  clients costs. Both systems run the same HAProxy configuration;
  keepalived's trials run with the agents' --checks-only, so that only
  HAProxy's checks and passive health find the dead front there.
DONE: trials in which the address moved (the gaps are over those).
`, benchRate, probeInterval, probeInterval/2, afterMoveWatch)
}
