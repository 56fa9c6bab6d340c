package testbed

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// peerRejected is the agent's count of peer datagrams refused, by reason.
const peerRejected = "webfarm_peer_datagrams_rejected_total"

// peerWatch scrapes every front's count of refused peer datagrams at a
// steady pace and keeps each rise, so that a scenario can tell what a
// restarted agent's peers refused of it, and until when.
type peerWatch struct {
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	start   time.Time
	changes []peerChange
}

// peerChange is one counter that grew between two scrapes of a front.
type peerChange struct {
	at     time.Duration
	front  string
	series string
	delta  float64
}

// watchPeers starts a peerWatch that scrapes every interval until Stop.
func (tb *Testbed) watchPeers(ctx context.Context, interval time.Duration) *peerWatch {
	w := &peerWatch{stop: make(chan struct{}), done: make(chan struct{}), start: time.Now()}
	go func() {
		defer close(w.done)
		last := map[string]Metrics{}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			for _, f := range tb.fronts {
				m, err := f.AgentMetrics(ctx)
				if err != nil {
					// A front whose agent restarts serves no metrics.
					continue
				}
				w.note(f.Name, last[f.Name], m)
				last[f.Name] = m
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// note keeps what grew from before to now; nothing on a first scrape, and
// nothing for a counter that fell (a restarted agent counts from zero).
func (w *peerWatch) note(front string, before, now Metrics) {
	if before == nil {
		return
	}
	at := time.Since(w.start)
	w.mu.Lock()
	defer w.mu.Unlock()
	for series, v := range now {
		name, _, _ := strings.Cut(series, "{")
		if name != peerRejected {
			continue
		}
		if d := v - before[series]; d > 0 && d <= v {
			w.changes = append(w.changes, peerChange{at: at, front: front, series: series, delta: d})
		}
	}
}

// Stop ends the watch and returns the changes, one line each, in time
// order, as offsets from its start.
func (w *peerWatch) Stop() []string {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	sort.SliceStable(w.changes, func(i, j int) bool { return w.changes[i].at < w.changes[j].at })
	lines := make([]string, 0, len(w.changes))
	for _, c := range w.changes {
		lines = append(lines, fmt.Sprintf("+%s %s %s +%g", round(c.at), c.front, c.series, c.delta))
	}
	return lines
}
