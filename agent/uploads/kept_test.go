package uploads

import "testing"

func TestKeptBase(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"a.jpg" + keptSuffix(1733112000123456789), "a.jpg"},
		{"a.jpg.~7~", "a.jpg"},
		{"dir.~1~.jpg.~7~", "dir.~1~.jpg"},
		// Set aside by an agent from before the suffix.
		{"a.jpg", "a.jpg"},
		{"a.jpg~", "a.jpg~"},
		{"a.jpg.~~", "a.jpg.~~"},
		{"a.jpg.~-7~", "a.jpg.~-7~"},
		{"a.jpg.~+7~", "a.jpg.~+7~"},
		{"a.jpg.~7", "a.jpg.~7"},
		{"a.jpg.~7x~", "a.jpg.~7x~"},
		{".~", ".~"},
		{".~~", ".~~"},
		// A version of a.jpg.~7~ that transfer 8 set aside.
		{"a.jpg.~7~.~8~", "a.jpg.~7~"},
	} {
		if got := keptBase(tc.name); got != tc.want {
			t.Errorf("keptBase(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
