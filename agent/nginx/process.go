package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
	return p.apply(ctx, files)
}

// Outcome is what ApplyEach did: the files nginx refused, each with its
// words, and whether nginx reloaded.
type Outcome struct {
	Refused  map[string]*ValidationError
	Reloaded bool
}

// ApplyEach is Apply, except that a candidate nginx refuses costs only the
// files that make it refuse: each changed file is tried alone on the
// current ones, in name order, and a refused file keeps its current
// version (or stays absent) while the others are applied. nginx's message
// does not always name the file (a server_names_hash too small for a long
// name names none), hence a trial per file rather than reading it.
func (p *Process) ApplyEach(ctx context.Context, files map[string][]byte) (Outcome, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	reloaded, err := p.apply(ctx, files)
	var refused *ValidationError
	if !errors.As(err, &refused) {
		return Outcome{Reloaded: reloaded}, err
	}
	current, err := readDir(p.Dir)
	if err != nil {
		return Outcome{}, err
	}
	kept := keepCurrent(current, files)
	if err := p.check(ctx, kept); err != nil {
		// Even the current versions are refused: nginx's own configuration
		// changed under them. Leave everything as it is.
		return Outcome{}, refused
	}
	out := Outcome{Refused: map[string]*ValidationError{}}
	for _, name := range changedNames(kept, files) {
		trial := maps.Clone(kept)
		trial[name] = files[name]
		err := p.check(ctx, trial)
		switch {
		case errors.As(err, &refused):
			out.Refused[name] = refused
		case err != nil:
			return out, err
		default:
			kept = trial
		}
	}
	out.Reloaded, err = p.apply(ctx, kept)
	return out, err
}

// apply is Apply with p.mu held.
func (p *Process) apply(ctx context.Context, files map[string][]byte) (bool, error) {
	current, err := readDir(p.Dir)
	if err != nil {
		return false, err
	}
	if same(current, files) {
		return false, nil
	}
	restore, err := p.swapIn(files)
	if err != nil {
		return false, err
	}
	if err := p.run(ctx, "-t"); err != nil {
		return false, errors.Join(err, restore())
	}
	_ = os.RemoveAll(p.Dir + ".previous")
	if err := p.run(ctx, "-s", "reload"); err != nil {
		return false, fmt.Errorf("reloading nginx: %w", err)
	}
	return true, nil
}

// check runs `nginx -t` with files in Dir, and puts the current files back
// whatever it says.
func (p *Process) check(ctx context.Context, files map[string][]byte) error {
	restore, err := p.swapIn(files)
	if err != nil {
		return err
	}
	return errors.Join(p.run(ctx, "-t"), restore())
}

// swapIn puts files in Dir, the current ones aside; restore puts these
// back.
func (p *Process) swapIn(files map[string][]byte) (restore func() error, err error) {
	staging, previous := p.Dir+".new", p.Dir+".previous"
	for _, dir := range []string{staging, previous} {
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
	}
	if err := writeDir(staging, files); err != nil {
		return nil, fmt.Errorf("writing the candidate vhosts: %w", err)
	}
	if err := swap(p.Dir, previous, staging); err != nil {
		_ = os.RemoveAll(staging)
		return nil, err
	}
	return func() error {
		defer os.RemoveAll(staging)
		if err := swap(p.Dir, staging, previous); err != nil {
			return fmt.Errorf("putting the previous vhosts back: %w", err)
		}
		return nil
	}, nil
}

// keepCurrent is the current version of each file of want that exists:
// the candidate with every change undone, removals kept.
func keepCurrent(current, want map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(want))
	for name := range want {
		if c, ok := current[name]; ok {
			out[name] = c
		}
	}
	return out
}

// changedNames are the names whose content differs between have and
// want, sorted: the http-level file (00-) before the vhosts that use it.
func changedNames(have, want map[string][]byte) []string {
	var out []string
	for name, content := range want {
		if c, ok := have[name]; !ok || !bytes.Equal(c, content) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
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
