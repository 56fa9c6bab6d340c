package uploads

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// watcher watches a tree with inotify, one watch per directory, adding
// the directories that appear. It reports the paths that changed, relative
// to the root; what happened to them is read from the tree when they
// settle.
type watcher struct {
	root string
	*inotify
}

func newWatcher(root string) (*watcher, error) {
	in, err := newInotify()
	if err != nil {
		return nil, err
	}
	wt := &watcher{root: root, inotify: in}
	if _, err := wt.addTree(root); err != nil {
		_ = in.file.Close()
		return nil, err
	}
	in.start()
	return wt, nil
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
