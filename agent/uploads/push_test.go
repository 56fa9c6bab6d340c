package uploads

import (
	"slices"
	"testing"
	"time"
)

func TestListedTime(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want time.Time
		ok   bool
	}{
		{"-rw-------              0 2026/12/02 07:15:03 in-step\n", time.Date(2026, 12, 2, 7, 15, 3, 0, time.Local), true},
		{"-rw-r--r--          4,096 2025/01/31 23:59:59 in-step", time.Date(2025, 1, 31, 23, 59, 59, 0, time.Local), true},
		{"", time.Time{}, false},
		{"-rw------- 0 2026-12-02 07:15:03 in-step", time.Time{}, false},
	} {
		got, err := listedTime(tc.out)
		if (err == nil) != tc.ok || !got.Equal(tc.want) {
			t.Errorf("listedTime(%q) = %v, %v; want %v, ok %v", tc.out, got, err, tc.want, tc.ok)
		}
	}
}

func TestAttributesOnly(t *testing.T) {
	diff := []string{
		".f...pog... old/a.txt",
		".f....og... b c.txt",
		">f+++++++++ new.txt",
		".f..t...... touched.txt",
		"*deleting   gone.txt",
		"cL+++++++++ link -> x",
	}
	if got, want := attributesOnly(diff), []string{"old/a.txt", "b c.txt"}; !slices.Equal(got, want) {
		t.Errorf("attributesOnly = %q, want %q", got, want)
	}
}
