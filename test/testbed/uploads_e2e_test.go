package testbed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/webfarm/webfarm/agent/uploads"
)

// TestE2EUploadsThroughVIP: the samples' farm with an uploads directory,
// first as the demo shows it (UploadsScenario, which removes the
// declaration at its end), then declared again, with six more files.
// Each front's nginx takes PUT /uploads/ into its own copy of the
// directory; a client uploads files through the VIP, each landing on the
// front HAProxy picks, and reads them back through the VIP with a fresh
// connection per read, so that every front answers in turn, from the end
// of the upload on. Every read finds the file, also while it has not
// reached every front yet (HAProxy retries a 404 on another front on a
// farm with uploads); the time until it is on every front is printed.
func TestE2EUploadsThroughVIP(t *testing.T) {
	Skip(t)
	tb := StartT(t, Options{Uploads: true})
	ctx := context.Background()
	if err := tb.WaitReady(ctx, readyTimeout); err != nil {
		t.Fatal(err)
	}
	r, err := UploadsScenario(ctx, tb)
	for _, row := range r.Rows {
		t.Logf("demo scenario: %s: %s", row.Check, row.Got)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the demo's uploads scenario took %v", r.Figures["scenario"].Round(time.Millisecond))
	// The scenario removed the declaration: declared again, with the
	// demo's files in place.
	if err := tb.EnableUploads(); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.waitUploadsInSync(ctx); err != nil {
		t.Fatal(err)
	}
	c := NewClient(ClientOptions{Timeout: 5 * time.Second})
	if err := waitEveryFrontAnswers(c, len(tb.Fronts())); err != nil {
		t.Fatal(err)
	}

	var spread []time.Duration
	early := 0
	for i := range 6 {
		u, err := uploadAndRead(ctx, c, tb, fmt.Sprintf("/uploads/e2e/%02d.bin", i), 1<<10<<(2*i%8))
		if err != nil {
			t.Fatal(err)
		}
		t.Log(u)
		spread, early = append(spread, u.everywhere), early+u.reads
	}
	slices.Sort(spread)
	t.Logf("6 uploads of 1 KB-64 KB through the VIP: on every front after median %v, max %v; %d reads before that, all found the file",
		spread[len(spread)/2].Round(time.Millisecond), spread[len(spread)-1].Round(time.Millisecond), early)
	if early == 0 {
		t.Error("no read happened before an upload reached every front: the test showed nothing")
	}

	want := uploadsTree(t, tb.Fronts()[0].UploadsDir())
	for _, f := range tb.Fronts()[1:] {
		if got := uploadsTree(t, f.UploadsDir()); !maps.Equal(got, want) {
			t.Errorf("%s's uploads differ from %s's:\n%v\n%v", f.Name, tb.Fronts()[0].Name, got, want)
		}
	}
}

// uploadsTree is every file below dir with its SHA-256, the agent's own
// directory left out.
func uploadsTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == uploads.MetaDir {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			rel, _ := filepath.Rel(dir, path)
			out[rel] = hex.EncodeToString(sum[:])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
