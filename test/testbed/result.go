package testbed

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what a scenario checked and measured, for the demo's summary
// table, the e2e tests' logs and the benchmarks' figures. A scenario that
// fails returns its Result so far with the error.
type Result struct {
	Scenario string
	Rows     []Row
	// Figures are the measured durations by name (e.g. "gap"), for
	// benchmarks.
	Figures map[string]time.Duration
	// Counts are the counted figures by name (e.g. "failed"), for benchmarks.
	Counts map[string]int
}

// Row is one check of a scenario.
type Row struct {
	Check string
	Got   string
	OK    bool
}

func newResult(scenario string) *Result {
	return &Result{Scenario: scenario, Figures: map[string]time.Duration{}, Counts: map[string]int{}}
}

// check records a row and returns an error naming it when ok is false.
func (r *Result) check(ok bool, check, format string, args ...any) error {
	got := fmt.Sprintf(format, args...)
	r.Rows = append(r.Rows, Row{Check: check, Got: got, OK: ok})
	if !ok {
		return fmt.Errorf("%s: %s", check, got)
	}
	return nil
}

// figure records a measured duration and its row.
func (r *Result) figure(name, check string, d time.Duration) {
	r.Figures[name] = d
	r.Rows = append(r.Rows, Row{Check: check, Got: round(d).String(), OK: true})
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// WriteTable prints results as a table: scenario, check, measured, verdict.
func WriteTable(w io.Writer, results []*Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tCHECK\tMEASURED\t")
	for _, r := range results {
		name := r.Scenario
		if len(r.Rows) == 0 {
			fmt.Fprintf(tw, "%s\t(no check completed)\t\tFAIL\n", name)
		}
		for _, row := range r.Rows {
			verdict := "ok"
			if !row.OK {
				verdict = "FAIL"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, row.Check, oneLine(row.Got), verdict)
			name = ""
		}
	}
	tw.Flush()
}

// tableWidth bounds a measured value in the table; the narration above it
// has the whole text.
const tableWidth = 72

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > tableWidth {
		s = s[:tableWidth-3] + "..."
	}
	return s
}
