package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// Process is the node's nginx, which webfarm does not run: it owns Dir,
// which nginx's configuration includes (`include <Dir>/*.conf;` inside
// `http {}`), and reloads nginx when Dir changes.
type Process struct {
	// Binary is the nginx executable; default "nginx" from $PATH.
	Binary string
	// Dir holds the rendered files and nothing else.
	Dir string
	// MainConfig and Prefix, when set, are nginx's -c and -p.
	MainConfig, Prefix string

	mu sync.Mutex
}

// pidPrefix starts nginx's messages: "<pid>#<tid>: ".
var pidPrefix = regexp.MustCompile(`^\d+#\d+: `)

// ValidationError means `nginx -t` refused the candidate configuration;
// nothing was loaded and Dir holds what it held before.
type ValidationError struct{ Output string }

func (e *ValidationError) Error() string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(e.Output), "\n") {
		if strings.Contains(l, "[emerg]") || strings.Contains(l, "[alert]") || strings.Contains(l, "[crit]") {
			msg := strings.TrimSpace(l[strings.Index(l, "]")+1:])
			lines = append(lines, pidPrefix.ReplaceAllString(msg, ""))
		}
	}
	if len(lines) == 0 {
		lines = []string{strings.TrimSpace(e.Output)}
	}
	return "nginx -t refused the configuration: " + strings.Join(lines, "; ")
}

func (p *Process) binary() string {
	if p.Binary == "" {
		return "nginx"
	}
	return p.Binary
}

func (p *Process) args(extra ...string) []string {
	var a []string
	if p.Prefix != "" {
		a = append(a, "-p", p.Prefix)
	}
	if p.MainConfig != "" {
		a = append(a, "-c", p.MainConfig)
	}
	return append(a, extra...)
}

// Apply makes nginx serve files (by name, in Dir). With nothing changed it
// does nothing. Otherwise it puts the candidate in Dir in place of the
// current files, checks nginx's whole configuration with `nginx -t`, puts
// the current files back if refused (*ValidationError), and else reloads
// nginx gracefully: old workers finish their requests. nginx reads its
// files only when told, so it never loads a refused candidate.
func (p *Process) Apply(ctx context.Context, files map[string][]byte) (reloaded bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	current, err := readDir(p.Dir)
	if err != nil {
		return false, err
	}
	if same(current, files) {
		return false, nil
	}
	staging, previous := p.Dir+".new", p.Dir+".previous"
	for _, dir := range []string{staging, previous} {
		if err := os.RemoveAll(dir); err != nil {
			return false, err
		}
	}
	if err := writeDir(staging, files); err != nil {
		return false, fmt.Errorf("writing the candidate vhosts: %w", err)
	}
	defer os.RemoveAll(staging)
	if err := swap(p.Dir, previous, staging); err != nil {
		return false, err
	}
	if err := p.run(ctx, "-t"); err != nil {
		if rerr := swap(p.Dir, staging, previous); rerr != nil {
			return false, fmt.Errorf("%w; and putting the previous vhosts back: %v", err, rerr)
		}
		return false, err
	}
	_ = os.RemoveAll(previous)
	if err := p.run(ctx, "-s", "reload"); err != nil {
		return false, fmt.Errorf("reloading nginx: %w", err)
	}
	return true, nil
}

// swap moves dir to old (when it exists) and next to dir.
func swap(dir, old, next string) error {
	if err := os.Rename(dir, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Rename(next, dir)
}

func (p *Process) run(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, p.binary(), p.args(args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit) && ctx.Err() == nil && len(args) == 1 && args[0] == "-t":
		return &ValidationError{Output: out.String()}
	default:
		return fmt.Errorf("%s %s: %w: %s", p.binary(), strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
}

func readDir(dir string) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	files := make(map[string][]byte, len(entries))
	for _, e := range entries {
		if files[e.Name()], err = os.ReadFile(filepath.Join(dir, e.Name())); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// writeDir writes files into dir, which it creates; only plain names.
func writeDir(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, content := range files {
		if name != filepath.Base(name) || !strings.HasSuffix(name, ".conf") || strings.HasPrefix(name, ".") {
			return fmt.Errorf("file %q: must be a plain name ending in .conf", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func same(a, b map[string][]byte) bool {
	if a == nil || len(a) != len(b) {
		return false
	}
	for name, content := range b {
		if got, ok := a[name]; !ok || !bytes.Equal(got, content) {
			return false
		}
	}
	return true
}
