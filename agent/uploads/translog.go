package uploads

import (
	"bufio"
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
}

// parseTransfer reads a line of logFormat ("<date> <time> [pid] recv
// module addr path"); ok is false for every other line of the log.
func parseTransfer(line string) (Transfer, bool) {
	_, rest, found := strings.Cut(line, "] ")
	if !found {
		return Transfer{}, false
	}
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
	t.Module, t.Peer = f[1], addr.Unmap()
	t.Path = strings.TrimSuffix(unescapeName(f[3]), "/")
	if t.Path == "" || t.Path == "." {
		return Transfer{}, false
	}
	return t, true
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
}

// read returns the transfers logged since the last read.
func (t *logTail) read() ([]Transfer, error) {
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
	if _, err := f.Seek(t.offset, io.SeekStart); err != nil {
		return nil, fmt.Errorf("reading the transfer log: %w", err)
	}
	var out []Transfer
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			// A line without its newline is still being written.
			break
		}
		t.offset += int64(len(line))
		if tr, ok := parseTransfer(strings.TrimSuffix(line, "\n")); ok {
			out = append(out, tr)
		}
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
