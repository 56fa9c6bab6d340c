package haproxy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
)

// changedCerts are the certificate bundles of files that differ from what
// in holds, when nothing else does: the same configuration, the same
// files by name, and only .pem files under certs/ changed. ok is false
// when anything else changed, and HAProxy must load the configuration.
func (in installedFiles) changedCerts(cfg []byte, files map[string][]byte) (paths []string, ok bool) {
	if in.cfg == nil || !bytes.Equal(in.cfg, cfg) || len(in.files) != len(files) {
		return nil, false
	}
	for path, content := range files {
		old, known := in.files[path]
		switch {
		case !known:
			return nil, false
		case bytes.Equal(old, content):
		case strings.HasPrefix(path, certsDir+"/") && strings.HasSuffix(path, ".pem"):
			paths = append(paths, path)
		default:
			return nil, false
		}
	}
	slices.Sort(paths)
	return paths, len(paths) > 0
}

// updateCerts replaces the certificates at paths (relative to Dir) in the
// running worker through its runtime API, each in a transaction (`set ssl
// cert`, then `commit ssl cert`): new handshakes get the new certificate,
// and no connection is touched. Then it writes them to Dir, which holds
// what HAProxy runs. An error leaves the caller to reload: a certificate
// committed before it is in the files that reload reads too.
func (p *Process) updateCerts(ctx context.Context, files map[string][]byte, paths []string) error {
	for _, path := range paths {
		if err := p.setCert(ctx, path, files[path]); err != nil {
			return err
		}
	}
	for _, path := range paths {
		if err := writeFileAtomic(p.path(path), files[path]); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return nil
}

// setCert updates one certificate, or aborts its transaction.
func (p *Process) setCert(ctx context.Context, path string, bundle []byte) error {
	// HAProxy names a certificate by the path as the configuration
	// writes it, relative to Dir (default-path config).
	name := path
	payload, err := certPayload(bundle)
	if err != nil {
		return fmt.Errorf("certificate %s: %w", path, err)
	}
	out, err := command(ctx, p.RuntimeSocket(), "set ssl cert "+name+" <<\n"+payload+"\n")
	if err == nil && !strings.Contains(out, "Transaction") {
		err = fmt.Errorf("set ssl cert: %s", strings.TrimSpace(out))
	}
	if err == nil {
		out, err = command(ctx, p.RuntimeSocket(), "commit ssl cert "+name)
		if err == nil && !strings.Contains(out, "Success!") {
			err = fmt.Errorf("commit ssl cert: %s", strings.TrimSpace(out))
		}
	}
	if err != nil {
		_, _ = command(ctx, p.RuntimeSocket(), "abort ssl cert "+name)
		return fmt.Errorf("updating certificate %s at runtime: %w", path, err)
	}
	return nil
}

// certPayload is a PEM bundle as the runtime API takes it: an empty line
// ends the payload, so there must be none inside.
func certPayload(bundle []byte) (string, error) {
	var lines []string
	for _, l := range strings.Split(string(bundle), "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "", fmt.Errorf("empty bundle")
	}
	return strings.Join(lines, "\n"), nil
}

// writeFileAtomic replaces path with content, mode 0600, never leaving it
// half written.
func writeFileAtomic(path string, content []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
