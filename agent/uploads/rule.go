package uploads

import "cmp"

// Version is one version of a path: a file's modification time, or a
// deletion's time, and the node it came from. Every front compares the same
// two versions the same way, so every front keeps the same one.
type Version struct {
	// MtimeNs is the file's modification time, or when the deletion was
	// seen, in nanoseconds since the epoch.
	MtimeNs int64
	// Node is the front the version came from.
	Node string
	// Deleted is a tombstone rather than a file.
	Deleted bool
}

// Wins tells whether a beats b: the newer time wins, then the greater node
// name, then a deletion over a file (a node that deleted and wrote a path
// within one nanosecond gets no say over which came first).
func Wins(a, b Version) bool {
	if c := cmp.Compare(a.MtimeNs, b.MtimeNs); c != 0 {
		return c > 0
	}
	if c := cmp.Compare(a.Node, b.Node); c != 0 {
		return c > 0
	}
	return a.Deleted && !b.Deleted
}
