package uploads

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// trialSeedVar names the variable that replays a trial's schedule: the
// same operations on the same fronts in the same order. The timing of
// real processes is not replayed.
const trialSeedVar = "WEBFARM_TRIAL_SEED"

const (
	// trialLength is how long operations go on.
	trialLength = 20 * time.Second
	// trialOpGap is the mean pause between two operations.
	trialOpGap = 25 * time.Millisecond
	// trialDownEvery is the mean pause between two fronts going down.
	trialDownEvery = 3 * time.Second
	// deletionSeenWithin bounds, on either side of a deletion, when its
	// front may date it: at the first event of the path's last burst of
	// events, as the event reader saw it.
	deletionSeenWithin = time.Second
)

// TestNodeUploadsRandomTrial: three fronts, each with its agent's Syncer
// and rsync daemon, and a random schedule of uploads (written in place or
// renamed into place), overwrites of the same paths on several fronts,
// deletions and renames, while fronts go down (agent and daemon stopped,
// pushes under way killed) and come back, taking uploads while down. A
// reader on every front that serves meanwhile checks that no file is ever
// seen half written, or mixed from two versions, where the agent put it.
// A front whose agent came back is drained until it caught up, and is not
// read meanwhile: its pull reads the peers' live directories, and a file
// a peer was writing in place as the pull read it lands as it was then,
// until the pull fetches it again (docs/architecture.md).
//
// Once every front is back and caught up, every front must hold the same
// tree, and each path what the rule (Wins) makes of every version the
// trial made of it anywhere: the newest write, or nothing where a later
// deletion beats it. No file is lost, none comes back, none is made up.
// A deletion's version is dated when its front saw it, known to within
// deletionSeenWithin: where a write is that close to it, either outcome
// is right, and the outcome is only checked to be one of the two.
//
// Deletions are made only on fronts that serve, their agent running and
// caught up: made while it is down, its front cannot tell them from a
// peer's new file, and takes the file back at its catch-up
// (docs/architecture.md).
func TestNodeUploadsRandomTrial(t *testing.T) {
	seed := trialSeed(t)
	fronts := newTestFarm(t, 3)
	for _, f := range fronts {
		f.start(t, fronts)
	}
	allCaughtUp(t, fronts)
	tr := newTrial(t, fronts, seed)
	stopReading := tr.readContinuously()
	tr.run(trialLength)
	tr.bringBack()
	allCaughtUpWithin(t, fronts, time.Minute)
	tr.noteCaughtUp()
	converged(t, fronts, nil, "after the trial")
	nothingLeftAside(t, fronts)
	converged(t, fronts, nil, "once every version set aside was judged")
	if seen := stopReading(); seen == 0 {
		t.Fatal("the reader checked no file: it proves nothing")
	}
	tr.check(t, tree(t, fronts[0].dir))
}

// nothingLeftAside waits until no front holds a version set aside that
// is still to be judged: one left there for good is an upload lost.
func nothingLeftAside(t *testing.T, fronts []*testFront) {
	t.Helper()
	var left []string
	if eventuallyQuiet(t, 10*time.Second, func() bool {
		left = left[:0]
		for _, f := range fronts {
			paths, err := setAside(filepath.Join(f.dir, replacedDir))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range paths {
				left = append(left, f.name+":"+p)
			}
		}
		return len(left) == 0
	}) < 0 {
		t.Fatalf("versions set aside and never judged: %v", left)
	}
}

func trialSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv(trialSeedVar); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", trialSeedVar, s, err)
		}
		return seed
	}
	return uint64(time.Now().UnixNano())
}

// trial runs random operations on the fronts and records every version
// of every path it makes.
type trial struct {
	t      *testing.T
	fronts []*testFront
	seed   uint64
	rng    *rand.Rand
	// down tells, per front, whether its agent is stopped.
	down []bool
	// drained tells, per front, that its agent came back and has not
	// been seen caught up: its servers are drained, and the reader
	// does not look there.
	drained []atomic.Bool
	// paths are the names uploads and deletions pick from: few enough
	// that several fronts write the same path.
	paths []string
	// versions are, per path, every version the trial made of it.
	versions map[string][]trialVersion
	// writing counts, per front and path, the starts and ends of a write
	// in place: odd while one is under way, where a reader may see it
	// half done.
	writing sync.Map // trialFile → *atomic.Uint64
	// ops counts operations, noops those that found nothing to do,
	// outs the fronts that went down.
	ops, noops, outs int
}

// trialFile is a path on one front.
type trialFile struct {
	front int
	path  string
}

// trialVersion is a version of a path that the trial made: a file
// written (or renamed) with its time and digest, or a deletion, dated by
// its front between notBefore and notAfter.
type trialVersion struct {
	op                  int
	front               string
	version             Version
	notBefore, notAfter time.Time
}

func newTrial(t *testing.T, fronts []*testFront, seed uint64) *trial {
	t.Logf("seed %d (%s=%d replays this schedule)", seed, trialSeedVar, seed)
	tr := &trial{t: t, fronts: fronts, seed: seed, rng: rand.New(rand.NewPCG(seed, 0)),
		down: make([]bool, len(fronts)), drained: make([]atomic.Bool, len(fronts)), versions: map[string][]trialVersion{}}
	for _, dir := range []string{"", "a/", "a/b/", "c/"} {
		for i := range 12 {
			tr.paths = append(tr.paths, fmt.Sprintf("%sf%02d.bin", dir, i))
		}
	}
	for _, f := range fronts {
		if err := os.MkdirAll(incomingDir(f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

// incomingDir is where an upload is written before it is renamed into
// place, as a web server's temporary files: on the synced directory's
// filesystem, outside it.
func incomingDir(f *testFront) string { return filepath.Join(filepath.Dir(f.dir), "incoming") }

// run operates for d: an operation every trialOpGap on average, on a
// random front, and now and then a front going down or coming back.
func (tr *trial) run(d time.Duration) {
	tr.t.Helper()
	end := time.Now().Add(d)
	nextOuting := time.Now().Add(tr.pause(trialDownEvery))
	backAt := make([]time.Time, len(tr.fronts))
	for time.Now().Before(end) {
		now := time.Now()
		for i, at := range backAt {
			if tr.down[i] && now.After(at) {
				tr.up(i)
			}
		}
		tr.noteCaughtUp()
		if now.After(nextOuting) {
			nextOuting = now.Add(tr.pause(trialDownEvery))
			if i := tr.rng.IntN(len(tr.fronts)); !tr.down[i] && tr.downCount() < len(tr.fronts)-1 {
				tr.goDown(i)
				backAt[i] = now.Add(500*time.Millisecond + tr.pause(1500*time.Millisecond))
			}
		}
		tr.operate(tr.rng.IntN(len(tr.fronts)))
		time.Sleep(tr.pause(trialOpGap))
	}
	tr.t.Logf("%d operations (%d changed nothing: a deletion or rename of a path its front lacked); fronts went down %d times",
		tr.ops, tr.noops, tr.outs)
}

// pause is a random pause of mean mean.
func (tr *trial) pause(mean time.Duration) time.Duration {
	return time.Duration(tr.rng.ExpFloat64() * float64(mean))
}

func (tr *trial) downCount() int {
	n := 0
	for _, d := range tr.down {
		if d {
			n++
		}
	}
	return n
}

func (tr *trial) goDown(i int) {
	tr.t.Logf("%s: down at %s", tr.fronts[i].name, time.Now().Format("15:04:05.000"))
	tr.fronts[i].stop()
	tr.down[i] = true
	tr.outs++
}

func (tr *trial) up(i int) {
	tr.t.Logf("%s: back at %s", tr.fronts[i].name, time.Now().Format("15:04:05.000"))
	tr.drained[i].Store(true)
	tr.fronts[i].start(tr.t, tr.fronts)
	tr.down[i] = false
}

// noteCaughtUp lets the reader look again at each front that came back
// and has caught up since.
func (tr *trial) noteCaughtUp() {
	for i := range tr.fronts {
		if tr.drained[i].Load() && tr.serving(i) {
			tr.drained[i].Store(false)
		}
	}
}

// bringBack starts every front that is down.
func (tr *trial) bringBack() {
	for i := range tr.fronts {
		if tr.down[i] {
			tr.up(i)
		}
	}
}

// operate makes one random change on front i: an upload mostly, a
// deletion or a rename where its agent runs.
func (tr *trial) operate(i int) {
	tr.ops++
	path := tr.paths[tr.rng.IntN(len(tr.paths))]
	switch r := tr.rng.IntN(100); {
	case r < 65 || !tr.serving(i):
		tr.upload(i, path, tr.rng.IntN(2) == 0)
	case r < 85:
		tr.delete(i, path)
	default:
		tr.rename(i, path, fmt.Sprintf("moved/%d.bin", tr.ops))
	}
}

// serving tells whether front i serves: its agent runs and has caught
// up. Until then its servers are drained, and no visitor deletes there.
// An upload still may land on a front whose agent is down.
func (tr *trial) serving(i int) bool {
	return !tr.down[i] && tr.fronts[i].syncer.Status().CaughtUp
}

// upload writes a new version of path on front i, in place or into a
// temporary file renamed into place, and records it as written.
func (tr *trial) upload(i int, path string, inPlace bool) {
	t, f := tr.t, tr.fronts[i]
	size := 64 + tr.rng.IntN(16<<10)
	if tr.rng.IntN(10) == 0 {
		size = 200<<10 + tr.rng.IntN(800<<10)
	}
	data := trialContent(tr.seed, tr.ops, size)
	abs := filepath.Join(f.dir, path)
	mkdirAsWebServer(t, f, filepath.Dir(path))
	var st os.FileInfo
	var err error
	if inPlace {
		st, err = tr.writeInPlace(i, path, data)
	} else {
		st, err = writeAndRename(filepath.Join(incomingDir(f), strconv.Itoa(tr.ops)), abs, data)
	}
	if err != nil {
		t.Fatalf("uploading %s on %s: %v", path, f.name, err)
	}
	sum := sha256.Sum256(data)
	tr.record(path, trialVersion{op: tr.ops, front: f.name,
		version: Version{MtimeNs: st.ModTime().UnixNano(), Size: st.Size(), Sum: hex.EncodeToString(sum[:])}})
}

// writeInPlace truncates and writes path on front i, owned as the web
// server's, as an upload handler that writes into the final name; it
// returns the file as written.
func (tr *trial) writeInPlace(i int, path string, data []byte) (os.FileInfo, error) {
	counter, _ := tr.writing.LoadOrStore(trialFile{i, path}, new(atomic.Uint64))
	writes := counter.(*atomic.Uint64)
	writes.Add(1)
	defer writes.Add(1)
	file, err := os.OpenFile(filepath.Join(tr.fronts[i].dir, path), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	if err := file.Chown(testUID, testGID); err != nil {
		return nil, err
	}
	if _, err := file.Write(data); err != nil {
		return nil, err
	}
	// The time of this version, whatever is renamed over its name
	// meanwhile: the agent sets that one aside and weighs it.
	return file.Stat()
}

// mkdirAsWebServer makes dir below f's directory and its parents, owned
// by the declared owner, as the web server that takes uploads makes them:
// the peers' daemons write there as that owner, also where the agent is
// down and does not give them their owner.
func mkdirAsWebServer(t *testing.T, f *testFront, dir string) {
	t.Helper()
	if err := (&Syncer{Module: f.module()}).mkdirsOwned(dir); err != nil {
		t.Fatal(err)
	}
}

// writeAndRename writes data into tmp, owned as the web server's, and
// renames it to abs; it returns the file as written.
func writeAndRename(tmp, abs string, data []byte) (os.FileInfo, error) {
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return nil, err
	}
	if err := os.Chown(tmp, testUID, testGID); err != nil {
		return nil, err
	}
	st, err := os.Stat(tmp)
	if err != nil {
		return nil, err
	}
	return st, os.Rename(tmp, abs)
}

// delete removes path on front i, if it holds it, and records the
// deletion.
func (tr *trial) delete(i int, path string) {
	tr.takeAway(i, path, func() error { return os.Remove(filepath.Join(tr.fronts[i].dir, path)) })
}

// rename moves path on front i to the new name to, if it holds it: the
// deletion of path, and to's first version, as it was under path.
func (tr *trial) rename(i int, path, to string) {
	f := tr.fronts[i]
	mkdirAsWebServer(tr.t, f, filepath.Dir(to))
	if !tr.takeAway(i, path, func() error { return os.Rename(filepath.Join(f.dir, path), filepath.Join(f.dir, to)) }) {
		return
	}
	// Nobody else writes to's name, and the agent only puts back versions
	// at paths it received: what is there now is what was moved.
	abs := filepath.Join(f.dir, to)
	st, err := os.Lstat(abs)
	if err != nil {
		tr.t.Fatal(err)
	}
	tr.record(to, trialVersion{op: tr.ops, front: f.name,
		version: Version{MtimeNs: st.ModTime().UnixNano(), Size: st.Size(), Sum: digestFile(abs)}})
}

// takeAway takes path away from front i by remove (a deletion, a
// rename), if the front holds it, records the deletion and reports
// whether it did.
func (tr *trial) takeAway(i int, path string, remove func() error) bool {
	before := time.Now()
	err := remove()
	if errors.Is(err, fs.ErrNotExist) {
		tr.noops++
		return false
	}
	if err != nil {
		tr.t.Fatal(err)
	}
	tr.recordDeletion(i, path, before)
	return true
}

func (tr *trial) recordDeletion(i int, path string, before time.Time) {
	tr.record(path, trialVersion{op: tr.ops, front: tr.fronts[i].name, version: Version{Deleted: true},
		notBefore: before.Add(-deletionSeenWithin), notAfter: time.Now().Add(deletionSeenWithin)})
}

func (tr *trial) record(path string, v trialVersion) {
	tr.versions[path] = append(tr.versions[path], v)
}

// readContinuously reads random paths on random fronts until the
// returned function is called, which returns how many files it checked.
// A file that is not a whole version the trial wrote fails the test,
// unless the trial is writing it in place on that front, or the front is
// drained.
func (tr *trial) readContinuously() func() int {
	stop, done := make(chan struct{}), make(chan int)
	rng := rand.New(rand.NewPCG(tr.seed, 1))
	go func() {
		checked := 0
		defer func() { done <- checked }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			i := rng.IntN(len(tr.fronts))
			if tr.readOne(i, tr.paths[rng.IntN(len(tr.paths))]) {
				checked++
			}
		}
	}()
	return func() int {
		close(stop)
		return <-done
	}
}

// readOne reads path on front i and reports whether it checked a file.
func (tr *trial) readOne(i int, path string) bool {
	if tr.drained[i].Load() {
		return false
	}
	var writes *atomic.Uint64
	if c, ok := tr.writing.Load(trialFile{i, path}); ok {
		writes = c.(*atomic.Uint64)
	}
	var before uint64
	if writes != nil {
		before = writes.Load()
	}
	data, err := os.ReadFile(filepath.Join(tr.fronts[i].dir, path))
	if err != nil {
		return false
	}
	if writes != nil && (before%2 == 1 || writes.Load() != before) {
		return false
	}
	if !trialContentWhole(tr.seed, data) {
		tr.t.Errorf("%s: a reader saw %s half written or mixed (%d bytes, %q...)",
			tr.fronts[i].name, path, len(data), data[:min(len(data), 40)])
	}
	return true
}

// check compares the tree every front converged on with what the rule
// makes of the versions the trial made.
func (tr *trial) check(t *testing.T, got map[string]string) {
	t.Helper()
	var decided, either, gone int
	for path, vs := range tr.versions {
		held, holds := got[path]
		how := fits(vs, held, holds)
		if alt := unshadowed(vs); how == wrong && len(alt) < len(vs) && fits(alt, held, holds) != wrong {
			how = eitherWay
		}
		switch how {
		case eitherWay:
			either++
		case asDeleted:
			gone++
			decided++
		case asWritten:
			decided++
		default:
			t.Errorf("%s: every front holds %s; the trial made %s", path, describeHeld(held, holds), describeVersions(vs))
		}
	}
	for path, held := range got {
		if _, made := tr.versions[path]; !made && held != "dir" {
			t.Errorf("%s: every front holds %s, which the trial never wrote", path, held)
		}
	}
	t.Logf("%d paths: %d as the rule decides (%d of them deleted), %d either way (a write within %v of a deletion, or a write that its own front's next one, of the same time, replaced)",
		len(tr.versions), decided, gone, either, deletionSeenWithin)
	if decided < len(tr.versions)/2 {
		t.Fatalf("only %d paths of %d had one right outcome: the trial proves too little", decided, len(tr.versions))
	}
}

// fit is how a path's end fits the rule made of its versions.
type fit int

const (
	wrong fit = iota
	asWritten
	asDeleted
	eitherWay
)

// fits tells how a path that ended holding held (or nothing) fits the
// rule made of versions vs.
func fits(vs []trialVersion, held string, holds bool) fit {
	want, certain := expectedOutcome(vs)
	switch {
	case !certain && (!holds || held == want.digest):
		return eitherWay
	case certain && want.deleted && !holds:
		return asDeleted
	case certain && !want.deleted && holds && held == want.digest:
		return asWritten
	}
	return wrong
}

// unshadowed is vs less each write that a later write of the same front
// replaced within the same modification time (the kernel dates files by
// its coarse clock, a few milliseconds a tick): that write may never have
// left its front, and the rule then weighed the next one alone, or it
// went out and won or lost the tie by its size and content.
func unshadowed(vs []trialVersion) []trialVersion {
	var out []trialVersion
	for i, v := range vs {
		shadowed := !v.version.Deleted && slices.ContainsFunc(vs[i+1:], func(later trialVersion) bool {
			return later.front == v.front && !later.version.Deleted && later.version.MtimeNs == v.version.MtimeNs
		})
		if !shadowed {
			out = append(out, v)
		}
	}
	return out
}

// outcome is what a path must end as: a file with a digest as tree gives
// it, or deleted.
type outcome struct {
	digest  string
	deleted bool
}

// expectedOutcome is what the rule makes of a path's versions, and
// whether it is certain; when it is not, the path may be the newest
// write (returned) or deleted.
func expectedOutcome(vs []trialVersion) (outcome, bool) {
	var newest *Version
	var lastDeletion trialVersion
	for i := range vs {
		switch v := &vs[i]; {
		case v.version.Deleted:
			if v.notAfter.After(lastDeletion.notAfter) {
				lastDeletion = *v
			}
		case newest == nil || Wins(v.version, *newest):
			newest = &v.version
		}
	}
	if newest == nil {
		return outcome{deleted: true}, true
	}
	write := outcome{digest: newest.Sum[:16]}
	switch mtime := time.Unix(0, newest.MtimeNs); {
	case lastDeletion.notAfter.IsZero() || mtime.After(lastDeletion.notAfter):
		return write, true
	case mtime.Before(lastDeletion.notBefore):
		return outcome{deleted: true}, true
	default:
		return write, false
	}
}

func describeHeld(digest string, holds bool) string {
	if !holds {
		return "nothing"
	}
	return digest
}

func describeVersions(vs []trialVersion) string {
	var b bytes.Buffer
	for _, v := range vs {
		if v.version.Deleted {
			fmt.Fprintf(&b, "\n  op %d on %s: deleted, seen between %s and %s", v.op, v.front,
				v.notBefore.Format("15:04:05.000"), v.notAfter.Format("15:04:05.000"))
			continue
		}
		fmt.Fprintf(&b, "\n  op %d on %s: %s at %s", v.op, v.front, v.version.Sum[:16],
			time.Unix(0, v.version.MtimeNs).Format("15:04:05.000000"))
	}
	return b.String()
}

// trialContent is op's upload: a header that names it and its size, and
// size bytes that only it has.
func trialContent(seed uint64, op, size int) []byte {
	header := fmt.Sprintf("trial op %d size %d\n", op, size)
	data := make([]byte, len(header)+size)
	copy(data, header)
	fill(rand.New(rand.NewPCG(seed, uint64(op))), data[len(header):])
	return data
}

// trialContentWhole tells whether data is one whole upload of the trial.
func trialContentWhole(seed uint64, data []byte) bool {
	var op, size int
	if _, err := fmt.Sscanf(string(data[:min(len(data), 64)]), "trial op %d size %d\n", &op, &size); err != nil {
		return false
	}
	return bytes.Equal(data, trialContent(seed, op, size))
}

func fill(rng *rand.Rand, b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}
