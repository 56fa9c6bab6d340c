package testbed

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// timelineMessages are the log messages of the controller and the agents
// that place a move of the address in time: the controller's decisions,
// each agent's changes of decision (what a new owner waits for), the old
// owner's removal and the new owner's take-over.
var timelineMessages = map[string]bool{
	"New owner":                            true,
	"Ownership withdrawn":                  true,
	"Decided":                              true,
	"Handed off a failover address":        true,
	"Took over failover address":           true,
	"Released failover address":            true,
	"Withdrew from vouching for the owner": true,
	"Renewed node Lease again":             true,
	"Ran notify hook":                      true,
}

// timelineFields are the fields of those messages worth a line.
var timelineFields = []string{"owner", "epoch", "previousOwner", "released", "action", "after", "for", "waited",
	"connectionsInFlight", "connectionsCut", "connectionsKept", "reason", "state", "took", "error"}

// logMarks are the sizes of the controller's and the agents' logs at a
// moment: a timeline reads only what they wrote since.
type logMarks map[string]int64

// logSources names every log a timeline reads, by the name its lines get.
func (tb *Testbed) logSources() map[string]string {
	src := map[string]string{}
	if tb.ctl != nil {
		src["controller"] = tb.ctl.LogPath()
	}
	for _, f := range tb.fronts {
		if f.agent != nil {
			src[f.Name] = f.agent.LogPath()
		}
	}
	return src
}

// markLogs notes where every log ends now.
func (tb *Testbed) markLogs() logMarks {
	marks := logMarks{}
	for name, path := range tb.logSources() {
		if fi, err := os.Stat(path); err == nil {
			marks[name] = fi.Size()
		}
	}
	return marks
}

// timelineEntry is one line of a timeline.
type timelineEntry struct {
	at   time.Time
	line string
}

// timeline returns, in time order and relative to since, the lines the
// logs wrote after marks that place a move in time, with the ARP frames
// of the watcher: the old holder's last claim, the first claims by others
// and, from a front that released the address, its own requests for it
// (its forwarder resolving the next holder).
func (tb *Testbed) timeline(marks logMarks, since time.Time, arp *ARPWatcher, from string) []string {
	var entries []timelineEntry
	for name, path := range tb.logSources() {
		entries = append(entries, readTimeline(path, marks[name], name)...)
	}
	entries = append(entries, arpTimeline(arp, from, since)...)
	slices.SortStableFunc(entries, func(a, b timelineEntry) int { return a.at.Compare(b.at) })
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, fmt.Sprintf("%+6dms %s", e.at.Sub(since).Milliseconds(), e.line))
	}
	return out
}

// readTimeline reads the timeline's messages from the log at path from
// offset on; a log it cannot read gives none.
func readTimeline(path string, offset int64, name string) []timelineEntry {
	var out []timelineEntry
	scanLog(path, offset, func(line []byte) bool {
		if e, ok := parseTimelineLine(line, name); ok {
			out = append(out, e)
		}
		return true
	})
	return out
}

// scanLog hands each line of the log at path from offset on to fn, until
// fn returns false; a log it cannot read has no lines.
func scanLog(path string, offset int64, fn func(line []byte) bool) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return
	}
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() && fn(s.Bytes()) {
	}
}

// parseTimelineLine reads one JSON log line (zap, rfc3339nano times) of
// the timeline's messages.
func parseTimelineLine(line []byte, name string) (timelineEntry, bool) {
	if len(line) == 0 || line[0] != '{' {
		return timelineEntry{}, false
	}
	var fields map[string]any
	if json.Unmarshal(line, &fields) != nil {
		return timelineEntry{}, false
	}
	msg, _ := fields["msg"].(string)
	ts, _ := fields["ts"].(string)
	at, err := time.Parse(time.RFC3339Nano, ts)
	if !timelineMessages[msg] || err != nil {
		return timelineEntry{}, false
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", name, msg)
	for _, k := range timelineFields {
		if v, ok := fields[k]; ok {
			fmt.Fprintf(&b, " %s=%v", k, v)
		}
	}
	return timelineEntry{at: at, line: b.String()}, true
}

// arpTimeline is the watcher's part of a timeline: the last claim by from,
// the first two claims by others after since, and the first request for
// the address that from made after since.
func arpTimeline(arp *ARPWatcher, from string, since time.Time) []timelineEntry {
	var out []timelineEntry
	var lastFrom *ARPEvent
	others := 0
	for _, e := range arp.Events() {
		switch {
		case e.Front == from:
			lastFrom = &e
		case e.Time.After(since) && others < 2:
			others++
			out = append(out, timelineEntry{e.Time, fmt.Sprintf("arp: %s claims the address (%s)", orNone(e.Front), claimKind(e))})
		}
	}
	if lastFrom != nil {
		out = append(out, timelineEntry{lastFrom.Time, fmt.Sprintf("arp: %s's last claim", from)})
	}
	if ask, ok := arp.FirstAsk(from, since); ok {
		out = append(out, timelineEntry{ask, fmt.Sprintf("arp: %s asks who has the address (its forwarder)", from)})
	}
	return out
}

func claimKind(e ARPEvent) string {
	if e.Announce {
		return "announcement"
	}
	return "reply"
}
