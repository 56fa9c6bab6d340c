package uploads

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// What a peer's transfer replaces or deletes, rsync's daemon sets aside as
// .webfarm/replaced/<peer>/<path><suffix>, the suffix naming the transfer
// (Rsync.common), so that two transfers of a path before it is judged each
// keep the version they replaced. Agents from before the suffix set
// versions aside under the path's own name: those are weighed too.

// keptSuffix is the suffix of what transfer n sets aside.
func keptSuffix(n int64) string { return ".~" + strconv.FormatInt(n, 10) + "~" }

// keptBase is the name of the path whose version name is: name less a
// transfer's suffix, or name itself, set aside by an agent from before
// the suffix. Such a version of a path whose own name ends like a suffix
// is taken for another path's: they are left from an upgrade only.
func keptBase(name string) string {
	i := strings.LastIndex(name, ".~")
	if i < 0 || !strings.HasSuffix(name, "~") || i+2 >= len(name)-1 {
		return name
	}
	if _, err := strconv.ParseUint(name[i+2:len(name)-1], 10, 64); err != nil {
		return name
	}
	return name[:i]
}

// keptIndex lists what peers' transfers set aside, reading each
// directory once: a burst of thousands of files into one directory must
// not read it again for each of them. It is read again after keptAge
// (Syncer.keptNow) and after every pull: a version set aside since would
// be missed, and a path whose transfer was not logged yet taken for a
// local change and sent back.
type keptIndex struct {
	root    string
	at      time.Time
	senders []string
	read    bool
	// dirs holds, per directory read, the versions set aside there by
	// the name of their path.
	dirs map[string]map[string][]string
}

// keptAge, in quiet periods, is how long a keptIndex is used.
const keptAge = 0.25

// keptNow is the keptIndex, read again if older than keptAge.
func (s *Syncer) keptNow() *keptIndex {
	now := s.Clock.Now()
	if s.kept == nil || now.Sub(s.kept.at) > time.Duration(keptAge*float64(s.Quiet)) {
		s.kept = &keptIndex{root: filepath.Join(s.Module.Path, replacedDir), at: now, dirs: map[string]map[string][]string{}}
	}
	return s.kept
}

// versions lists the versions of path that sender's transfers set aside:
// files and links, never directories (rsync sets none aside).
func (k *keptIndex) versions(sender, path string) []string {
	dir := filepath.Join(k.root, sender, filepath.Dir(path))
	byBase, ok := k.dirs[dir]
	if !ok {
		byBase = map[string][]string{}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !e.IsDir() {
				base := keptBase(e.Name())
				byBase[base] = append(byBase[base], filepath.Join(dir, e.Name()))
			}
		}
		k.dirs[dir] = byBase
	}
	return byBase[filepath.Base(path)]
}

// replacedBy lists the peers whose transfers set a version of path aside.
func (k *keptIndex) replacedBy(path string) []string {
	if !k.read {
		entries, _ := os.ReadDir(k.root)
		for _, e := range entries {
			if e.IsDir() {
				k.senders = append(k.senders, e.Name())
			}
		}
		k.read = true
	}
	var senders []string
	for _, sender := range k.senders {
		if len(k.versions(sender, path)) > 0 {
			senders = append(senders, sender)
		}
	}
	return senders
}

// candidate is one version of a path that judge weighs: the file (or
// link) at abs, or a deletion when abs is empty.
type candidate struct {
	abs string
	v   Version
}

func fileCandidate(abs string, st os.FileInfo) *candidate {
	return &candidate{abs: abs, v: Version{MtimeNs: st.ModTime().UnixNano(), Size: st.Size()}}
}

// beats tells whether c wins over o (Wins); the files' digests are read
// only when their times and sizes tie.
func (c *candidate) beats(o *candidate) bool {
	if c.v.MtimeNs == o.v.MtimeNs && c.v.Size == o.v.Size && c.abs != "" && o.abs != "" {
		c.digest()
		o.digest()
	}
	return Wins(c.v, o.v)
}

func (c *candidate) digest() {
	if c.v.Sum == "" {
		c.v.Sum = digestFile(c.abs)
	}
}
