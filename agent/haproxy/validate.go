package haproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// ValidationError means `haproxy -c` refused a configuration; nothing was
// loaded.
type ValidationError struct {
	// Output is everything haproxy printed.
	Output string
}

// alertPrefix is the start of an alert line: `[ALERT]    (1234) : `.
var alertPrefix = regexp.MustCompile(`^\[ALERT\] +\(\d+\) : `)

// Error gives haproxy's alerts that name a problem (or, without any, the end
// of its output).
func (e *ValidationError) Error() string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(e.Output), "\n") {
		if !alertPrefix.MatchString(l) || strings.Contains(l, "rror(s) found in configuration") || strings.Contains(l, "Fatal errors found") {
			continue
		}
		lines = append(lines, strings.TrimSpace(alertPrefix.ReplaceAllString(l, "")))
	}
	if len(lines) == 0 {
		all := strings.Split(strings.TrimSpace(e.Output), "\n")
		lines = all[max(0, len(all)-5):]
	}
	return "haproxy -c refused the configuration: " + strings.Join(lines, "; ")
}

// validate runs `haproxy -c` on cfgPath. Error files are resolved relative to
// cfgPath's directory (`default-path config`), which the output does not
// repeat: paths in it are relative to that directory.
func validate(ctx context.Context, binary, cfgPath string) error {
	cmd := exec.CommandContext(ctx, binary, "-c", "-f", cfgPath)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit) && ctx.Err() == nil:
		return &ValidationError{Output: strings.ReplaceAll(out.String(), filepath.Dir(cfgPath)+"/", "")}
	default:
		return fmt.Errorf("running %s -c: %w: %s", binary, err, strings.TrimSpace(out.String()))
	}
}

// writeTree writes cfg as dir/haproxy.cfg and files under dir, creating dir.
func writeTree(dir string, cfg []byte, files map[string][]byte) error {
	if err := checkFilePaths(files); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), cfg, 0o600); err != nil {
		return err
	}
	for path, content := range files {
		full := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(full, content, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// fileDirs are the directories of Process.Dir that hold the files a
// configuration refers to: error pages, certificates and crt-lists.
var fileDirs = []string{errorsDir, certsDir}

// checkFilePaths accepts only plain relative paths under fileDirs, so that
// Apply never writes outside its own directory.
func checkFilePaths(files map[string][]byte) error {
	for path := range files {
		clean := filepath.ToSlash(filepath.Clean(path))
		dir, _, _ := strings.Cut(path, "/")
		if clean != path || !filepath.IsLocal(path) || !slices.Contains(fileDirs, dir) || dir == path {
			return fmt.Errorf("file %q: must be a clean relative path under %s/", path, strings.Join(fileDirs, "/ or "))
		}
	}
	return nil
}
