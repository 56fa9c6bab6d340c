package uploads

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Op is what a peer did to a path.
type Op int

const (
	// OpRecv: a file, link or directory written by a peer.
	OpRecv Op = iota
	// OpDel: a path deleted by a peer.
	OpDel
)

// Transfer is one line of the daemon's transfer log: a path a peer wrote
// or deleted in a module.
type Transfer struct {
	Op     Op
	Module string
	Peer   netip.Addr
	Path   string
	// Dest is the directory below the module that the peer's session
	// wrote into: its staging directory (stagingFor), or empty for a
	// peer from before staging, which wrote into the tree itself.
	Dest string
	// Session is the daemon's process that logged it.
	Session int
}

// logLine is what one line of the daemon's log says: a transfer, or the
// start or end of a session (one connection, one rsync process).
type logLine struct {
	pid int
	// transfer is set on a transfer line.
	transfer *Transfer
	// receiving is the module a peer began to write into, dest the
	// directory below it; ended is set on the session's last line.
	receiving, dest string
	ended           bool
}

// parseLine reads a line of the daemon's log ("<date> <time> [pid] ...").
// A session that writes into a module begins with "rsync to <module>/..."
// and ends with its summary ("sent ...") or its error ("rsync error: ...").
func parseLine(line string) (logLine, bool) {
	_, rest, found := strings.Cut(line, " [")
	if !found {
		return logLine{}, false
	}
	pidText, rest, found := strings.Cut(rest, "] ")
	if !found {
		return logLine{}, false
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil {
		return logLine{}, false
	}
	l := logLine{pid: pid}
	switch {
	case strings.HasPrefix(rest, "rsync to "):
		// "rsync to <module>/<dest>/ from <user>@<host> (<address>)"
		target, _, _ := strings.Cut(strings.TrimPrefix(rest, "rsync to "), " from ")
		module, dest, _ := strings.Cut(target, "/")
		l.receiving, l.dest = module, strings.Trim(dest, "/")
	case strings.HasPrefix(rest, "sent "), strings.HasPrefix(rest, "rsync error: "):
		l.ended = true
	default:
		t, ok := parseTransfer(rest)
		if !ok {
			return logLine{}, false
		}
		l.transfer = &t
	}
	return l, true
}

// parseTransfer reads a transfer as logFormat writes it ("recv module
// addr >f+++++++++ path"), or as it did before the item's changes were
// logged ("recv module addr path"): ok is false for every other line.
func parseTransfer(rest string) (Transfer, bool) {
	f := strings.SplitN(rest, " ", 4)
	if len(f) != 4 {
		return Transfer{}, false
	}
	var t Transfer
	switch f[0] {
	case "recv":
		t.Op = OpRecv
	case "del.":
		t.Op = OpDel
	default:
		return Transfer{}, false
	}
	addr, err := netip.ParseAddr(f[2])
	if err != nil {
		return Transfer{}, false
	}
	name := f[3]
	// %i is eleven characters, spaces included ("*deleting  ").
	if len(name) > 12 && name[11] == ' ' && isItem(name[:11]) {
		name = name[12:]
	}
	t.Module, t.Peer = f[1], addr.Unmap()
	t.Path = strings.TrimSuffix(unescapeName(name), "/")
	if t.Path == "" || t.Path == "." {
		return Transfer{}, false
	}
	return t, true
}

// isItem tells rsync's itemized changes (%i): what was done (">", "c",
// "." or "*deleting"), then the kind of entry.
func isItem(s string) bool {
	if s == "*deleting  " {
		return true
	}
	return strings.ContainsRune("<>ch.", rune(s[0])) && strings.ContainsRune("fdLDS", rune(s[1]))
}

// unescapeName undoes rsync's escaping of unprintable bytes in logged
// names ("\#012" for a newline).
func unescapeName(s string) string {
	if !strings.Contains(s, `\#`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 < len(s) && s[i+1] == '#' {
			if n, err := strconv.ParseUint(s[i+2:i+5], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 4
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// maxLogSize is the size past which the tail truncates the daemon's log:
// it is read only for its transfer lines, which the tail has then read.
const maxLogSize = 4 << 20

// logTail reads the transfer lines the daemon appends to its log.
type logTail struct {
	path   string
	offset int64
	// buf is kept from one read to the next: the log is read at every
	// line the daemon writes, and a new buffer each time was half of
	// what a Syncer allocated under 20 uploads/s, and so half of its
	// garbage collections.
	buf []byte
}

// maxKeptBuffer bounds the buffer kept between reads.
const maxKeptBuffer = 64 << 10

// read returns what was logged since the last read.
func (t *logTail) read() ([]logLine, error) {
	f, err := os.Open(t.path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the transfer log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading the transfer log: %w", err)
	}
	if st.Size() < t.offset {
		t.offset = 0
	}
	if int64(cap(t.buf)) < st.Size()-t.offset {
		t.buf = make([]byte, st.Size()-t.offset)
	}
	n, err := f.ReadAt(t.buf[:st.Size()-t.offset], t.offset)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading the transfer log: %w", err)
	}
	var out []logLine
	// A line without its newline is still being written.
	for data := t.buf[:n]; ; {
		line, rest, whole := bytes.Cut(data, []byte{'\n'})
		if !whole {
			break
		}
		t.offset += int64(len(line)) + 1
		if l, ok := parseLine(string(line)); ok {
			out = append(out, l)
		}
		data = rest
	}
	if cap(t.buf) > maxKeptBuffer {
		t.buf = nil
	}
	// rsyncd appends (O_APPEND): after a truncation it writes at the
	// start again.
	if t.offset > maxLogSize {
		if err := os.Truncate(t.path, 0); err == nil {
			t.offset = 0
		}
	}
	return out, nil
}
