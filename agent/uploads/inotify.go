package uploads

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"
)

// inotify reads the kernel's inotify itself, in fsnotify's terms:
// fsnotify does not expose close_write, which tells that a write is
// complete. It keeps which directory each watch is of.
type inotify struct {
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
	// dev is the filesystem of the first directory watched, the root;
	// elsewhere are the watches of directories on another one.
	dev       uint64
	elsewhere map[int]bool

	// movedAway is the last file renamed away: the reader's own.
	movedAway movedAway
}

// movedAway is a file renamed away, and its event's cookie, which the
// event of its new name carries too.
type movedAway struct {
	cookie uint32
	name   string
}

func newInotify() (*inotify, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	return &inotify{fd: fd, file: os.NewFile(uintptr(fd), "inotify"),
		events: make(chan event), errors: make(chan error), done: make(chan struct{}),
		dirs: map[int]string{}, watch: map[string]int{}, elsewhere: map[int]bool{}}, nil
}

// start reads events until close.
func (in *inotify) start() {
	in.reader.Add(1)
	go in.read()
}

// event is an inotify event; complete is set when it ends a write: a
// file closed after writing (close_write) or renamed into place
// (moved_to), a directory made or renamed into place. writing is set
// when a writer may still hold the file open: data written (modify) or a
// file made by open (create, one link); gone when the name no longer
// holds the file written (deleted, renamed away). inPlace is set when
// the name itself was written into (writing, or close_write), which
// rsync's daemon never does: it writes aside and renames into place.
//
// removedHere is set when a file was deleted (unlink), and movedFrom is
// a file's former name when it was renamed from one watched directory to
// another: both are a process's here. rsync's daemon and the agent never
// unlink a file of the tree: they move files to and from the agent's own
// directory, which is not watched, so the two halves of their renames
// are never both seen.
type event struct {
	fsnotify.Event
	complete, writing, gone, inPlace bool
	removedHere                      bool
	movedFrom                        string
}

// watchMask are the events of a directory's watch: fsnotify's, and
// close_write. A symlink is never followed, and only a directory watched.
const watchMask = unix.IN_CREATE | unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CLOSE_WRITE |
	unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF |
	unix.IN_DONT_FOLLOW | unix.IN_ONLYDIR

// close stops the watch; the events and errors channels are closed.
func (in *inotify) close() error {
	close(in.done)
	err := in.file.Close()
	in.reader.Wait()
	return err
}

// add watches the directory path.
func (in *inotify) add(path string) error {
	wd, err := unix.InotifyAddWatch(in.fd, path, watchMask)
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		// No longer a directory: its own event says what it is now.
		return nil
	}
	if err != nil {
		return &fs.PathError{Op: "inotify_add_watch", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		_, _ = unix.InotifyRmWatch(in.fd, uint32(wd))
		return &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if old, ok := in.watch[path]; ok && old != wd {
		delete(in.dirs, old)
		delete(in.elsewhere, old)
	}
	if len(in.dirs) == 0 {
		in.dev = st.Dev
	}
	in.dirs[wd], in.watch[path] = path, wd
	in.elsewhere[wd] = st.Dev != in.dev
	return nil
}

// remove drops the watch of path, if any.
func (in *inotify) remove(path string) {
	in.mu.Lock()
	wd, ok := in.watch[path]
	if ok {
		delete(in.watch, path)
		delete(in.dirs, wd)
		delete(in.elsewhere, wd)
	}
	in.mu.Unlock()
	if ok {
		_, _ = unix.InotifyRmWatch(in.fd, uint32(wd))
	}
}

// read turns what inotify reports into events until the watcher closes.
func (in *inotify) read() {
	defer in.reader.Done()
	defer close(in.events)
	defer close(in.errors)
	var buf [unix.SizeofInotifyEvent * 4096]byte
	for {
		n, err := in.file.Read(buf[:])
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				in.send(event{}, fmt.Errorf("reading inotify: %w", err))
			}
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			raw := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(raw.Len)]
			off += unix.SizeofInotifyEvent + int(raw.Len)
			ev, ok, err := in.translate(int(raw.Wd), raw.Mask, raw.Cookie, strings.TrimRight(string(name), "\x00"))
			if (ok || err != nil) && !in.send(ev, err) {
				return
			}
		}
	}
}

// translate makes an event of inotify's: ok is false for none.
func (in *inotify) translate(wd int, mask, cookie uint32, name string) (event, bool, error) {
	if mask&unix.IN_Q_OVERFLOW != 0 {
		return event{}, false, fsnotify.ErrEventOverflow
	}
	in.mu.Lock()
	dir, ok := in.dirs[wd]
	elsewhere := in.elsewhere[wd]
	if ok && mask&unix.IN_IGNORED != 0 {
		delete(in.dirs, wd)
		delete(in.elsewhere, wd)
		if in.watch[dir] == wd {
			delete(in.watch, dir)
		}
	}
	in.mu.Unlock()
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
		ev.writing = mask&unix.IN_MODIFY != 0 || (mask&unix.IN_CREATE != 0 && madeByOpen(ev.Name))
		ev.gone = mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0
		// The daemon renames what it received into place from its
		// temporary directory, below the root; into a directory on
		// another filesystem it cannot, and copies into the name.
		ev.inPlace = (ev.writing || mask&unix.IN_CLOSE_WRITE != 0) && !elsewhere
		ev.removedHere = mask&unix.IN_DELETE != 0
		ev.movedFrom = in.pairMove(mask, cookie, ev.Name)
	} else {
		// A directory is whole once made: it goes with the files
		// written into it at once, rather than in a push of its own
		// that the next ones below it would wait for (mayPush).
		ev.complete = mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0
	}
	return ev, ev.Op != 0, nil
}

// pairMove returns, for a file renamed into name, its former name if the
// event of its leaving was the last one read; it remembers a file renamed
// away. inotify reports both halves of a rename one after the other.
func (in *inotify) pairMove(mask, cookie uint32, name string) string {
	switch {
	case mask&unix.IN_MOVED_FROM != 0:
		in.movedAway = movedAway{cookie, name}
	case mask&unix.IN_MOVED_TO != 0 && cookie != 0 && in.movedAway.cookie == cookie && in.movedAway.name != name:
		return in.movedAway.name
	}
	return ""
}

// madeByOpen tells whether the file just created at path was made by
// open(2), whose writer then holds it: a regular file with one link. A
// symlink, a hard link or a special file is whole once made.
func madeByOpen(path string) bool {
	st, err := os.Lstat(path)
	if err != nil || !st.Mode().IsRegular() {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && sys.Nlink == 1
}

// send hands on an event or an error; false once the watcher closes.
func (in *inotify) send(ev event, err error) bool {
	if err != nil {
		select {
		case in.errors <- err:
			return true
		case <-in.done:
			return false
		}
	}
	select {
	case in.events <- ev:
		return true
	case <-in.done:
		return false
	}
}
