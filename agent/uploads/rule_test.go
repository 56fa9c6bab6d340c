package uploads

import "testing"

func TestWins(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b Version
		want bool
	}{
		{"newer file wins", Version{MtimeNs: 2, Sum: "a"}, Version{MtimeNs: 1, Sum: "b"}, true},
		{"older file loses", Version{MtimeNs: 1, Sum: "b"}, Version{MtimeNs: 2, Sum: "a"}, false},
		{"same time, larger file wins", Version{MtimeNs: 5, Size: 9, Sum: "0f"}, Version{MtimeNs: 5, Size: 0, Sum: "f0"}, true},
		{"same time, smaller file loses", Version{MtimeNs: 5, Size: 0, Sum: "f0"}, Version{MtimeNs: 5, Size: 9, Sum: "0f"}, false},
		{"same time and size, greater digest wins", Version{MtimeNs: 5, Sum: "f0"}, Version{MtimeNs: 5, Sum: "0f"}, true},
		{"same time, smaller digest loses", Version{MtimeNs: 5, Sum: "0f"}, Version{MtimeNs: 5, Sum: "f0"}, false},
		{"newer deletion beats a file", Version{MtimeNs: 3, Deleted: true}, Version{MtimeNs: 2, Sum: "b"}, true},
		{"newer file beats a deletion", Version{MtimeNs: 3}, Version{MtimeNs: 2, Deleted: true}, true},
		{"same time, deletion beats a file", Version{MtimeNs: 3, Deleted: true}, Version{MtimeNs: 3, Sum: "ff"}, true},
		{"same content: neither wins", Version{MtimeNs: 3, Sum: "aa"}, Version{MtimeNs: 3, Sum: "aa"}, false},
		{"two deletions: neither wins", Version{MtimeNs: 3, Deleted: true}, Version{MtimeNs: 3, Deleted: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Wins(tc.a, tc.b); got != tc.want {
				t.Errorf("Wins(%+v, %+v) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
			if tc.want && Wins(tc.b, tc.a) {
				t.Errorf("both versions win")
			}
		})
	}
}
