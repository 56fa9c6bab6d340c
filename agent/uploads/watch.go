package uploads

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"
)

// watcher watches a tree with inotify, one watch per directory, adding
// the directories that appear. It reports the paths that changed, relative
// to the root; what happened to them is read from the tree when they
// settle. It reads inotify itself, in fsnotify's terms: fsnotify does not
// expose close_write, which tells that a write is complete.
type watcher struct {
	root string
	// fd is the file's descriptor, taken once: os.File's Fd sets it
	// blocking, and a blocked read would not end at close.
	fd     int
	file   *os.File
	events chan event
	errors chan error
	done   chan struct{}
	reader sync.WaitGroup

	mu    sync.Mutex
	dirs  map[int]string
	watch map[string]int
}

// event is an inotify event; complete is set when it ends a write: a
// file closed after writing (close_write) or renamed into place
// (moved_to), a directory made or renamed into place.
type event struct {
	fsnotify.Event
	complete bool
}

// watchMask are the events of a directory's watch: fsnotify's, and
// close_write. A symlink is never followed, and only a directory watched.
const watchMask = unix.IN_CREATE | unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CLOSE_WRITE |
	unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF |
	unix.IN_DONT_FOLLOW | unix.IN_ONLYDIR

func newWatcher(root string) (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	wt := &watcher{root: root, fd: fd, file: os.NewFile(uintptr(fd), "inotify"),
		events: make(chan event), errors: make(chan error), done: make(chan struct{}),
		dirs: map[int]string{}, watch: map[string]int{}}
	if _, err := wt.addTree(root); err != nil {
		_ = wt.file.Close()
		return nil, err
	}
	wt.reader.Add(1)
	go wt.read()
	return wt, nil
}

// close stops the watch; the events and errors channels are closed.
func (wt *watcher) close() error {
	close(wt.done)
	err := wt.file.Close()
	wt.reader.Wait()
	return err
}

// add watches the directory path.
func (wt *watcher) add(path string) error {
	wd, err := unix.InotifyAddWatch(wt.fd, path, watchMask)
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		// No longer a directory: its own event says what it is now.
		return nil
	}
	if err != nil {
		return &fs.PathError{Op: "inotify_add_watch", Path: path, Err: err}
	}
	wt.mu.Lock()
	defer wt.mu.Unlock()
	if old, ok := wt.watch[path]; ok && old != wd {
		delete(wt.dirs, old)
	}
	wt.dirs[wd], wt.watch[path] = path, wd
	return nil
}

// remove drops the watch of path, if any.
func (wt *watcher) remove(path string) {
	wt.mu.Lock()
	wd, ok := wt.watch[path]
	if ok {
		delete(wt.watch, path)
		delete(wt.dirs, wd)
	}
	wt.mu.Unlock()
	if ok {
		_, _ = unix.InotifyRmWatch(wt.fd, uint32(wd))
	}
}

// read turns what inotify reports into events until the watcher closes.
func (wt *watcher) read() {
	defer wt.reader.Done()
	defer close(wt.events)
	defer close(wt.errors)
	var buf [unix.SizeofInotifyEvent * 4096]byte
	for {
		n, err := wt.file.Read(buf[:])
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				wt.send(event{}, fmt.Errorf("reading inotify: %w", err))
			}
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			raw := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(raw.Len)]
			off += unix.SizeofInotifyEvent + int(raw.Len)
			ev, ok, err := wt.translate(int(raw.Wd), raw.Mask, strings.TrimRight(string(name), "\x00"))
			if (ok || err != nil) && !wt.send(ev, err) {
				return
			}
		}
	}
}

// translate makes an event of inotify's: ok is false for none.
func (wt *watcher) translate(wd int, mask uint32, name string) (event, bool, error) {
	if mask&unix.IN_Q_OVERFLOW != 0 {
		return event{}, false, fsnotify.ErrEventOverflow
	}
	wt.mu.Lock()
	dir, ok := wt.dirs[wd]
	if ok && mask&unix.IN_IGNORED != 0 {
		delete(wt.dirs, wd)
		if wt.watch[dir] == wd {
			delete(wt.watch, dir)
		}
	}
	wt.mu.Unlock()
	if !ok || mask&unix.IN_IGNORED != 0 {
		return event{}, false, nil
	}
	ev := event{Event: fsnotify.Event{Name: dir}}
	if name != "" {
		ev.Name = filepath.Join(dir, name)
	}
	for _, m := range []struct {
		in uint32
		op fsnotify.Op
	}{
		{unix.IN_CREATE | unix.IN_MOVED_TO, fsnotify.Create},
		{unix.IN_MODIFY | unix.IN_CLOSE_WRITE, fsnotify.Write},
		{unix.IN_DELETE | unix.IN_DELETE_SELF, fsnotify.Remove},
		{unix.IN_MOVED_FROM | unix.IN_MOVE_SELF, fsnotify.Rename},
		{unix.IN_ATTRIB, fsnotify.Chmod},
	} {
		if mask&m.in != 0 {
			ev.Op |= m.op
		}
	}
	if mask&unix.IN_ISDIR == 0 {
		ev.complete = mask&(unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO) != 0
	} else {
		// A directory is whole once made: it goes with the files
		// written into it at once, rather than in a push of its own
		// that the next ones below it would wait for (mayPush).
		ev.complete = mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0
	}
	return ev, ev.Op != 0, nil
}

// send hands on an event or an error; false once the watcher closes.
func (wt *watcher) send(ev event, err error) bool {
	if err != nil {
		select {
		case wt.errors <- err:
			return true
		case <-wt.done:
			return false
		}
	}
	select {
	case wt.events <- ev:
		return true
	case <-wt.done:
		return false
	}
}

// addTree watches dir and every directory below it, and returns the
// paths found below it: a directory that appears may hold files written
// before its watch was added.
func (wt *watcher) addTree(dir string) ([]string, error) {
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, ok := wt.rel(path)
		if !ok {
			return filepath.SkipDir
		}
		if path != dir {
			found = append(found, rel)
		}
		if d.IsDir() {
			if err := wt.add(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("watching %s: %w", path, err)
			}
		}
		return nil
	})
	return found, err
}

// rel is path relative to the root; false for the agent's own directory.
func (wt *watcher) rel(path string) (string, bool) {
	rel, err := filepath.Rel(wt.root, path)
	if err != nil || rel == MetaDir || strings.HasPrefix(rel, MetaDir+"/") {
		return "", false
	}
	return rel, true
}

// changed turns an event into the paths it changed. A change of a file's
// attributes only (fsnotify's Chmod: a new mode, owner or time) counts: an
// upload may set its time after its content; the Syncer leaves out its
// own chmod and chown (enforce). A directory's do not: rsync sets their
// times as it fills them, and they are not compared.
func (wt *watcher) changed(ev event) ([]string, error) {
	rel, ok := wt.rel(ev.Name)
	if !ok || rel == "." {
		return nil, nil
	}
	if ev.Op == fsnotify.Chmod {
		if st, err := os.Lstat(ev.Name); err != nil || st.IsDir() {
			return nil, nil
		}
		return []string{rel}, nil
	}
	paths := []string{rel}
	if ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove) {
		// A directory moved away keeps its watch under the old name:
		// drop it, its new name (if inside) arrives as a Create.
		wt.remove(ev.Name)
	}
	if ev.Has(fsnotify.Create) {
		if st, err := os.Lstat(ev.Name); err == nil && st.IsDir() {
			found, err := wt.addTree(ev.Name)
			paths = append(paths, found...)
			if err != nil {
				return paths, err
			}
		}
	}
	return paths, nil
}
