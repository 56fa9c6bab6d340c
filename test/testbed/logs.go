package testbed

import (
	"io/fs"
	"os"
	"path/filepath"
)

// SaveLogs copies every log of the testbed (the control plane's, the
// controller's, each front's agent, HAProxy and keepalived) into dst,
// keeping their paths, so that a failed run can be read after the testbed
// is gone.
func (tb *Testbed) SaveLogs(dst string) error {
	return filepath.WalkDir(tb.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".log" {
			return err
		}
		rel, err := filepath.Rel(tb.dir, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, data, 0o644)
	})
}
