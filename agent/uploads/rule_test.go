package uploads

import "testing"

func TestWins(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b Version
		want bool
	}{
		{"newer file wins", Version{MtimeNs: 2, Node: "a"}, Version{MtimeNs: 1, Node: "b"}, true},
		{"older file loses", Version{MtimeNs: 1, Node: "b"}, Version{MtimeNs: 2, Node: "a"}, false},
		{"same time, greater node wins", Version{MtimeNs: 5, Node: "front2"}, Version{MtimeNs: 5, Node: "front1"}, true},
		{"same time, smaller node loses", Version{MtimeNs: 5, Node: "front1"}, Version{MtimeNs: 5, Node: "front2"}, false},
		{"newer deletion beats a file", Version{MtimeNs: 3, Node: "a", Deleted: true}, Version{MtimeNs: 2, Node: "b"}, true},
		{"newer file beats a deletion", Version{MtimeNs: 3, Node: "a"}, Version{MtimeNs: 2, Node: "b", Deleted: true}, true},
		{"same time and node, deletion wins", Version{MtimeNs: 3, Node: "a", Deleted: true}, Version{MtimeNs: 3, Node: "a"}, true},
		{"identical versions: neither wins", Version{MtimeNs: 3, Node: "a"}, Version{MtimeNs: 3, Node: "a"}, false},
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
