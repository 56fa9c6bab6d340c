package uploads

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"os"
)

// Version is one version of a path: a file's modification time and, when
// two times are equal, its size and a digest of its content; or a
// deletion and when it was seen. Every front compares the same two
// versions the same way, so every front keeps the same one. Nothing in a
// Version depends on which front sent it: a front may pass on a version
// it just received as its own, and the outcome does not change.
type Version struct {
	// MtimeNs is the file's modification time, or when the deletion was
	// seen, in nanoseconds since the epoch.
	MtimeNs int64
	// Size is the file's size.
	Size int64
	// Sum is the SHA-256 of the file's content, read only for a tie.
	Sum string
	// Deleted is a tombstone rather than a file.
	Deleted bool
}

// Wins tells whether a beats b: the newer time wins; at the same time a
// deletion beats a file, and between two files the larger wins, then the
// greater digest (the same content is the same version: neither wins).
// The size comes first for a write in place read as it began: truncated,
// then written, a file keeps the time of its truncation when both fall in
// one tick of the kernel's coarse clock, and a push that read it between
// the two sent its first bytes under the time of the whole; the greater
// digest alone let that prefix win everywhere, half the time, over the
// whole upload (TestNodeUploadsRandomTrial, a reader saw an empty file).
func Wins(a, b Version) bool {
	if c := cmp.Compare(a.MtimeNs, b.MtimeNs); c != 0 {
		return c > 0
	}
	if a.Deleted != b.Deleted {
		return a.Deleted
	}
	if c := cmp.Compare(a.Size, b.Size); c != 0 {
		return c > 0
	}
	return a.Sum > b.Sum
}

// digestFile is the SHA-256 of path's content, "" when unreadable.
func digestFile(path string) string { return hashFile(path, sha256.New()) }

// hashFile is the hex digest by h of path's content, "" when unreadable.
func hashFile(path string, h hash.Hash) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}
