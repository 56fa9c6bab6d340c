package uploads

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	transfer := func(op Op, module, addr, path string) *Transfer {
		return &Transfer{Op: op, Module: module, Peer: netip.MustParseAddr(addr), Path: path}
	}
	for _, tc := range []struct {
		line string
		want logLine
		ok   bool
	}{
		// As logFormat writes them, with the item's changes.
		{"2026/12/02 10:19:43 [9637] recv mod 10.0.0.1 >f+++++++++ sub/a", logLine{pid: 9637, transfer: transfer(OpRecv, "mod", "10.0.0.1", "sub/a")}, true},
		{"2026/12/02 10:19:43 [9637] recv mod 10.0.0.1 cd+++++++++ single/", logLine{pid: 9637, transfer: transfer(OpRecv, "mod", "10.0.0.1", "single")}, true},
		{"2026/12/02 10:19:45 [9713] recv mod 10.0.0.1 .d..t...... single/", logLine{pid: 9713, transfer: transfer(OpRecv, "mod", "10.0.0.1", "single")}, true},
		{"2026/12/02 10:19:45 [9713] recv mod 10.0.0.1 >f......... with space.jpg", logLine{pid: 9713, transfer: transfer(OpRecv, "mod", "10.0.0.1", "with space.jpg")}, true},
		{"2026/12/02 10:19:45 [9713] del. mod 10.0.0.1 *deleting   b", logLine{pid: 9713, transfer: transfer(OpDel, "mod", "10.0.0.1", "b")}, true},
		{"2026/12/02 10:19:45 [9713] del. mod 10.0.0.1 *deleting   dir/", logLine{pid: 9713, transfer: transfer(OpDel, "mod", "10.0.0.1", "dir")}, true},
		{"2026/12/02 10:19:45 [9713] recv mod 10.0.0.1 cL+++++++++ link", logLine{pid: 9713, transfer: transfer(OpRecv, "mod", "10.0.0.1", "link")}, true},
		{"2026/12/02 10:19:45 [9713] recv mod 10.0.0.1 .d..t...... ./", logLine{}, false},
		// As the daemon logged them before the changes were asked for.
		{"2026/12/01 21:27:16 [22282] recv mod 127.0.0.1 sub/a", logLine{pid: 22282, transfer: transfer(OpRecv, "mod", "127.0.0.1", "sub/a")}, true},
		{"2026/12/01 21:27:17 [22305] del. mod 10.0.0.2 dir/", logLine{pid: 22305, transfer: transfer(OpDel, "mod", "10.0.0.2", "dir")}, true},
		{"2026/12/01 21:27:17 [22305] recv mod fd00::2 with space.jpg", logLine{pid: 22305, transfer: transfer(OpRecv, "mod", "fd00::2", "with space.jpg")}, true},
		{`2026/12/01 21:27:17 [22305] recv mod 10.0.0.2 new\#012line`, logLine{pid: 22305, transfer: transfer(OpRecv, "mod", "10.0.0.2", "new\nline")}, true},
		{"2026/12/01 21:27:16 [22282] recv mod 10.0.0.2 .", logLine{}, false},
		// Sessions: one that writes into a module begins and ends.
		{"2026/12/02 10:16:56 [954] rsync to default.www.media/ from webfarm@UNDETERMINED (10.98.0.1)", logLine{pid: 954, receiving: "default.www.media"}, true},
		{"2026/12/04 09:50:46 [954] rsync to default.www.media/.webfarm/in/front3/ from webfarm@UNDETERMINED (10.98.0.1)", logLine{pid: 954, receiving: "default.www.media", dest: ".webfarm/in/front3"}, true},
		{"2026/12/02 10:16:56 [954] sent 54 bytes  received 142 bytes  total size 12", logLine{pid: 954, ended: true}, true},
		{"2026/12/02 10:16:56 [954] rsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1338) [generator=3.4.1]", logLine{pid: 954, ended: true}, true},
		// A session that only reads, and the rest.
		{"2026/12/02 10:16:55 [905] rsync on default.www.media/.webfarm from webfarm@UNDETERMINED (10.98.0.1)", logLine{}, false},
		{"2026/12/01 21:27:16 [22282] connect from UNDETERMINED (127.0.0.1)", logLine{}, false},
		{"2026/12/01 21:27:16 [22282] recv mod notanaddress x", logLine{}, false},
		{"2026/12/01 21:27:16 recv mod 10.0.0.2 x", logLine{}, false},
	} {
		got, ok := parseLine(tc.line)
		if ok != tc.ok || got.pid != tc.want.pid || got.receiving != tc.want.receiving || got.dest != tc.want.dest || got.ended != tc.want.ended ||
			(got.transfer == nil) != (tc.want.transfer == nil) || (got.transfer != nil && *got.transfer != *tc.want.transfer) {
			t.Errorf("parseLine(%q) = %+v (transfer %+v), %v; want %+v (transfer %+v), %v", tc.line, got, got.transfer, ok, tc.want, tc.want.transfer, tc.ok)
		}
	}
}

// TestLogTailReadsWholeLines: each read returns the lines appended since
// the last, whole ones only (the daemon may be writing one), from the
// start again once the log was truncated, and a line longer than the
// buffer kept between reads whole.
func TestLogTailReadsWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rsyncd.log")
	tail := logTail{path: path}
	appendLog := func(s string) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	paths := func() []string {
		t.Helper()
		lines, err := tail.read()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range lines {
			if l.transfer != nil {
				got = append(got, l.transfer.Path)
			}
		}
		return got
	}
	recv := func(path string) string {
		return "2026/12/02 10:19:43 [9637] recv mod 10.0.0.1 >f+++++++++ " + path + "\n"
	}
	long := strings.Repeat("d/", maxKeptBuffer) + "f"
	for i, step := range []struct {
		write string
		// truncate empties the log before the write, as the tail does
		// once it grew past maxLogSize.
		truncate bool
		want     []string
	}{
		{want: nil},
		{write: recv("a") + recv("b"), want: []string{"a", "b"}},
		{write: recv("c")[:20], want: nil},
		{write: recv("c")[20:] + recv("d")[:30], want: []string{"c"}},
		{write: recv("d")[30:], want: []string{"d"}},
		{write: recv(long) + recv("e"), want: []string{long, "e"}},
		{write: recv("f"), truncate: true, want: []string{"f"}},
	} {
		if step.truncate {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}
		if step.write != "" {
			appendLog(step.write)
		}
		if got := paths(); !slices.Equal(got, step.want) {
			t.Errorf("read %d: %q, want %q", i, got, step.want)
		}
	}
}
