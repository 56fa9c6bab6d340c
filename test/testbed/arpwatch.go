package testbed

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ARPEvent is one ARP frame seen in the client namespace that claims the
// VIP: an answer to a probe, or an announcement (gratuitous ARP).
type ARPEvent struct {
	Time time.Time
	MAC  string
	// Front owns MAC; empty for a MAC the testbed does not know.
	Front string
	// Announce is true for a gratuitous ARP, false for a reply.
	Announce bool
}

// Who is the front that claimed, or its MAC when the testbed does not know
// it.
func (e ARPEvent) Who() string {
	if e.Front == "" {
		return e.MAC
	}
	return e.Front
}

// ARPWatcher records, from the client namespace, which MACs claim the VIP
// (or another address) over time: tcpdump prints every ARP frame, and
// arping asks who has the address every probeInterval, so that every front
// holding it answers.
type ARPWatcher struct {
	tcpdump, arping *exec.Cmd
	address         string
	macs            map[string]string
	done            chan struct{}
	stopOnce        sync.Once

	mu     sync.Mutex
	events []ARPEvent
	// asks are the requests for the address by a node that does not claim
	// it (a front's forwarder resolving the next holder).
	asks []ARPEvent
}

// probeInterval is how often the watcher asks who has the VIP.
const probeInterval = 100 * time.Millisecond

// Lines such as (tcpdump -tt -n -e -l arp):
//
//	1700000000.123456 aa:bb:cc:dd:ee:ff > ...: Reply 10.99.0.10 is-at aa:bb:cc:dd:ee:ff, length 28
//	1700000000.123456 aa:bb:cc:dd:ee:ff > ...: Request who-has 10.99.0.10 tell 10.99.0.10, length 28
var (
	arpReply    = regexp.MustCompile(`^(\d+)\.(\d+) ([0-9a-f:]{17}) > .*: Reply (\S+) is-at ([0-9a-f:]{17})`)
	arpAnnounce = regexp.MustCompile(`^(\d+)\.(\d+) ([0-9a-f:]{17}) > .*: Request who-has (\S+) (?:\(\S+\) )?tell (\S+),`)
)

// WatchARP starts watching the VIP; Stop ends it.
func (tb *Testbed) WatchARP() (*ARPWatcher, error) { return tb.WatchARPFor(VIP) }

// WatchARPFor starts watching who claims address (an address on the
// bridge's subnet that the fronts may hold, such as KeepalivedVIP).
func (tb *Testbed) WatchARPFor(address string) (*ARPWatcher, error) {
	w := &ARPWatcher{address: address, macs: tb.macs, done: make(chan struct{})}
	w.tcpdump = ns(ClientNS).Command("tcpdump", "-tt", "-n", "-e", "-l", "-i", frontLink, "arp")
	stdout, err := w.tcpdump.StdoutPipe()
	if err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	stderr, err := w.tcpdump.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := w.tcpdump.Start(); err != nil {
		return nil, fmt.Errorf("starting tcpdump in %s: %w", ClientNS, err)
	}
	// tcpdump says "listening on ..." once it captures.
	go func() {
		s := bufio.NewScanner(stderr)
		once := sync.Once{}
		for s.Scan() {
			once.Do(func() { close(ready) })
		}
		once.Do(func() { close(ready) })
	}()
	go w.read(stdout)
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
	}
	interval := strconv.FormatFloat(probeInterval.Seconds(), 'f', 2, 64)
	w.arping = ns(ClientNS).Command("arping", "-q", "-i", frontLink, "-W", interval, address)
	if err := w.arping.Start(); err != nil {
		w.Stop()
		return nil, fmt.Errorf("starting arping in %s: %w", ClientNS, err)
	}
	return w, nil
}

func (w *ARPWatcher) read(r io.Reader) {
	defer close(w.done)
	s := bufio.NewScanner(r)
	for s.Scan() {
		if e, ok := parseARP(s.Text(), w.address); ok {
			e.Front = w.macs[e.MAC]
			w.mu.Lock()
			w.events = append(w.events, e)
			w.mu.Unlock()
		} else if e, ok := parseAsk(s.Text(), w.address); ok {
			e.Front = w.macs[e.MAC]
			w.mu.Lock()
			w.asks = append(w.asks, e)
			w.mu.Unlock()
		}
	}
}

// parseARP reads a tcpdump line that claims address.
func parseARP(line, address string) (ARPEvent, bool) {
	if m := arpReply.FindStringSubmatch(line); m != nil && m[4] == address {
		return ARPEvent{Time: unixTime(m[1], m[2]), MAC: m[5]}, true
	}
	if m := arpAnnounce.FindStringSubmatch(line); m != nil && m[4] == address && m[5] == address {
		return ARPEvent{Time: unixTime(m[1], m[2]), MAC: m[3], Announce: true}, true
	}
	return ARPEvent{}, false
}

// parseAsk reads a tcpdump line that asks for address on behalf of
// another address: not a claim.
func parseAsk(line, address string) (ARPEvent, bool) {
	if m := arpAnnounce.FindStringSubmatch(line); m != nil && m[4] == address && m[5] != address {
		return ARPEvent{Time: unixTime(m[1], m[2]), MAC: m[3]}, true
	}
	return ARPEvent{}, false
}

// FirstAsk is when front first asked who has the address after since.
func (w *ARPWatcher) FirstAsk(front string, since time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.asks {
		if e.Front == front && e.Time.After(since) {
			return e.Time, true
		}
	}
	return time.Time{}, false
}

func unixTime(sec, micro string) time.Time {
	s, _ := strconv.ParseInt(sec, 10, 64)
	us, _ := strconv.ParseInt(micro, 10, 64)
	return time.Unix(s, us*1000)
}

// Events returns what was seen so far.
func (w *ARPWatcher) Events() []ARPEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]ARPEvent(nil), w.events...)
}

// Conflicts returns every pair of claims for the VIP from two different
// MACs less than window apart: two fronts answering at once. A window
// shorter than the probe interval separates a clean move (one MAC stops,
// the next starts) from two holders answering the same probe.
func (w *ARPWatcher) Conflicts(window time.Duration) [][2]ARPEvent {
	events := w.Events()
	var out [][2]ARPEvent
	for i := range events {
		for j := i + 1; j < len(events) && events[j].Time.Sub(events[i].Time) < window; j++ {
			if events[j].MAC != events[i].MAC {
				out = append(out, [2]ARPEvent{events[i], events[j]})
			}
		}
	}
	return out
}

// Holders returns the sequence of fronts that claimed the VIP, each listed
// once per uninterrupted run of claims.
func (w *ARPWatcher) Holders() []string {
	var out []string
	for _, e := range w.Events() {
		name := e.Who()
		if len(out) == 0 || out[len(out)-1] != name {
			out = append(out, name)
		}
	}
	return out
}

// Stop ends the capture and the probes; the events stay readable.
func (w *ARPWatcher) Stop() { w.stopOnce.Do(w.stop) }

func (w *ARPWatcher) stop() {
	if w.arping != nil && w.arping.Process != nil {
		_ = w.arping.Process.Signal(syscall.SIGTERM)
		_ = w.arping.Wait()
	}
	_ = w.tcpdump.Process.Signal(syscall.SIGTERM)
	<-w.done // tcpdump's output is read to its end before Wait closes it
	_ = w.tcpdump.Wait()
}
