package testbed

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// UploadsDirectory is the name of the samples' uploads directory once
// EnableUploads declares it.
const UploadsDirectory = "media"

// UploadsPath is the uploads directory as every agent sees it (Options
// Uploads): the same path on every front, as the WebFarm declares it.
func (tb *Testbed) UploadsPath() string { return filepath.Join(tb.dir, "uploads") }

// UploadsDir is the front's own uploads directory, which its nginx serves
// at /uploads/ and writes PUTs into.
func (f *Front) UploadsDir() string { return filepath.Join(f.web.dir, "www", "uploads") }

// mountUploads starts f's agent in a mount namespace of its own where its
// front's uploads directory is bound on UploadsPath: the fronts share this
// machine's filesystem, and the farm declares one path for all of them.
// The rsync daemon the agent starts inherits the namespace.
func (tb *Testbed) mountUploads(f *Front) error {
	for _, d := range []string{tb.UploadsPath(), f.UploadsDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	f.agent.proc.argv = slices.Concat([]string{
		"unshare", "--mount", "--propagation", "private", "--",
		"sh", "-c", `mount --bind "$1" "$2" && shift 2 && exec "$@"`, "sh", f.UploadsDir(), tb.UploadsPath(),
	}, f.agent.proc.argv)
	return nil
}

// EnableUploads declares the uploads directory on the samples' WebFarm:
// owned by root (nginx writes as root here), synced on port 8873.
func (tb *Testbed) EnableUploads() error {
	patch := fmt.Sprintf(`{"spec":{"uploads":{"directories":[{"name":%q,"path":%q,"owner":0,"group":0}]}}}`,
		UploadsDirectory, tb.UploadsPath())
	if _, err := tb.Kubectl("patch", "webfarms.webfarm.io", WebFarmName, "-n", SamplesNamespace, "--type", "merge", "-p", patch); err != nil {
		return fmt.Errorf("declaring the uploads directory: %w", err)
	}
	tb.say("uploads: %s declared on WebFarm %s; each front's nginx takes PUT /uploads/ into its own directory, which its agent sees there", tb.UploadsPath(), WebFarmName)
	return nil
}

// DisableUploads removes the declaration: the farm is back as the samples
// declare it, the files stay where they are.
func (tb *Testbed) DisableUploads() error {
	if _, err := tb.Kubectl("patch", "webfarms.webfarm.io", WebFarmName, "-n", SamplesNamespace, "--type", "merge", "-p", `{"spec":{"uploads":null}}`); err != nil {
		return fmt.Errorf("removing the uploads declaration: %w", err)
	}
	return nil
}
