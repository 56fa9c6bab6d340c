package uploads

import (
	"net/netip"
	"testing"
)

func TestParseTransfer(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Transfer
		ok   bool
	}{
		{"2026/12/01 21:27:16 [22282] recv mod 127.0.0.1 sub/a", Transfer{OpRecv, "mod", netip.MustParseAddr("127.0.0.1"), "sub/a"}, true},
		{"2026/12/01 21:27:17 [22305] del. mod 10.0.0.2 b", Transfer{OpDel, "mod", netip.MustParseAddr("10.0.0.2"), "b"}, true},
		{"2026/12/01 21:27:17 [22305] del. mod 10.0.0.2 dir/", Transfer{OpDel, "mod", netip.MustParseAddr("10.0.0.2"), "dir"}, true},
		{"2026/12/01 21:27:17 [22305] recv mod fd00::2 with space.jpg", Transfer{OpRecv, "mod", netip.MustParseAddr("fd00::2"), "with space.jpg"}, true},
		{`2026/12/01 21:27:17 [22305] recv mod 10.0.0.2 new\#012line`, Transfer{OpRecv, "mod", netip.MustParseAddr("10.0.0.2"), "new\nline"}, true},
		{"2026/12/01 21:27:16 [22282] connect from UNDETERMINED (127.0.0.1)", Transfer{}, false},
		{"2026/12/01 21:27:16 [22282] sent 72 bytes  received 220 bytes  total size 12", Transfer{}, false},
		{"2026/12/01 21:27:16 [22282] recv mod notanaddress x", Transfer{}, false},
		{"2026/12/01 21:27:16 [22282] recv mod 10.0.0.2 .", Transfer{}, false},
	} {
		got, ok := parseTransfer(tc.line)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseTransfer(%q) = %+v, %v; want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}
