package v1alpha1_test

import (
	"context"
	"testing"

	"github.com/webfarm/webfarm/internal/testenv"
)

// The bad upload declarations join the objects
// TestEnvtestInvalidObjectsAreRejected proves refused, each naming its field.
func init() { invalidObjects = append(invalidObjects, invalidUploads...) }

// TestEnvtestUploadsAccepted: the API server accepts good declarations and
// fills in the defaults.
func TestEnvtestUploadsAccepted(t *testing.T) {
	env := testenv.Start(t)
	ns := newNamespace(t, env)
	o := webFarm(uploads(dir("media", "/srv/www/media"), dir("files", "/srv/files")))()
	o.SetNamespace(ns)
	if err := env.Client.Create(context.Background(), o); err != nil {
		t.Fatalf("refused: %v", err)
	}
	d := o.Object["spec"].(map[string]any)["uploads"].(map[string]any)["directories"].([]any)[0].(map[string]any)
	if d["owner"] != int64(33) || d["fileMode"] != "0644" || d["directoryMode"] != "0755" {
		t.Errorf("defaults not filled in: %v", d)
	}
}

var invalidUploads = []invalidCase{
	{"upload path relative", "spec.uploads.directories[0].path", webFarm(uploads(dir("media", "srv/media")))},
	{"upload path root", "spec.uploads.directories[0].path", webFarm(uploads(dir("media", "/")))},
	{"upload path with ..", "spec.uploads.directories[0].path", webFarm(uploads(dir("media", "/srv/../etc")))},
	{"upload path ending in ..", "spec.uploads.directories[0].path", webFarm(uploads(dir("media", "/srv/..")))},
	{"upload path with a space", "spec.uploads.directories[0].path", webFarm(uploads(dir("media", "/srv/my media")))},
	{"upload path with a trailing slash", "spec.uploads.directories[0].path", webFarm(uploads(dir("media", "/srv/media/")))},
	{"upload path twice", "spec.uploads.directories", webFarm(uploads(dir("a", "/srv/media"), dir("b", "/srv/media")))},
	{"upload paths nested", "spec.uploads.directories", webFarm(uploads(dir("a", "/srv/media"), dir("b", "/srv/media/img")))},
	{"upload name twice", "spec.uploads.directories[1]", webFarm(uploads(dir("a", "/srv/media"), dir("a", "/srv/files")))},
	{"upload name with a slash", "spec.uploads.directories[0].name", webFarm(uploads(dir("a/b", "/srv/media")))},
	{"upload no directories", "spec.uploads.directories", webFarm(uploads())},
	{"upload file mode not octal", "spec.uploads.directories[0].fileMode", webFarm(uploads(dir("media", "/srv/media", "fileMode", "0988")))},
	{"upload owner negative", "spec.uploads.directories[0].owner", webFarm(uploads(dir("media", "/srv/media", "owner", int64(-1))))},
	{"upload max lag too short", "spec.uploads.maxLag", webFarm(uploads(dir("media", "/srv/media")), set("uploads.maxLag", "10ms"))},
	{"upload port 0", "spec.uploads.port", webFarm(uploads(dir("media", "/srv/media")), set("uploads.port", int64(0)))},
}

// uploads declares the given directories on the farm.
func uploads(dirs ...any) edit {
	return set("uploads.directories", dirs)
}

// dir is one declared directory, with extra fields as name, value pairs.
func dir(name, path string, extra ...any) any {
	d := map[string]any{"name": name, "path": path}
	for i := 0; i+1 < len(extra); i += 2 {
		d[extra[i].(string)] = extra[i+1]
	}
	return d
}
