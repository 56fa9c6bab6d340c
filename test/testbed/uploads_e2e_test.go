package testbed

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/webfarm/webfarm/agent/uploads"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// TestE2EUploadsThroughVIP: the samples' farm with an uploads directory.
// Each front's nginx takes PUT /uploads/ into its own copy of the
// directory; a client uploads files through the VIP, each landing on the
// front HAProxy picks, and reads them back through the VIP with a fresh
// connection per read, so that every front answers in turn. Once a file
// is on every front, every read finds it; the time until then is printed.
func TestE2EUploadsThroughVIP(t *testing.T) {
	Skip(t)
	tb := StartT(t, Options{Uploads: true})
	ctx := context.Background()
	if err := tb.WaitReady(ctx, readyTimeout); err != nil {
		t.Fatal(err)
	}
	if err := tb.EnableUploads(); err != nil {
		t.Fatal(err)
	}
	waitUploadsInSync(ctx, t, tb)
	c := NewClient(ClientOptions{Timeout: 5 * time.Second})
	waitEveryFrontAnswers(ctx, t, c, len(tb.Fronts()))

	var spread []time.Duration
	for i := range 6 {
		path := fmt.Sprintf("/uploads/e2e/%02d.bin", i)
		body := make([]byte, 1<<10<<(2*i%8))
		_, _ = rand.Read(body)
		start := time.Now()
		front, err := put(ctx, c, VIPURL(path), body)
		if err != nil {
			t.Fatal(err)
		}
		everywhere, misses := readUntilEveryFront(ctx, t, c, path, body, len(tb.Fronts()))
		spread = append(spread, everywhere.Sub(start))
		t.Logf("%s (%d bytes) uploaded to %s: every front served it %v after the upload began; %d reads missed it before",
			path, len(body), front, everywhere.Sub(start).Round(time.Millisecond), misses)
		// From now on every read, on whichever front, finds it.
		for range 2 * len(tb.Fronts()) {
			resp, err := getBytes(ctx, c, VIPURL(path))
			if err != nil || resp.status != http.StatusOK || !bytes.Equal(resp.body, body) {
				t.Fatalf("%s after it reached every front: %d from %s (%v)", path, resp.status, resp.front, err)
			}
		}
	}
	slices.Sort(spread)
	t.Logf("6 uploads of 1 KB-64 KB through the VIP: on every front after median %v, max %v",
		spread[len(spread)/2].Round(time.Millisecond), spread[len(spread)-1].Round(time.Millisecond))

	want := uploadsTree(t, tb.Fronts()[0].UploadsDir())
	for _, f := range tb.Fronts()[1:] {
		if got := uploadsTree(t, f.UploadsDir()); !maps.Equal(got, want) {
			t.Errorf("%s's uploads differ from %s's:\n%v\n%v", f.Name, tb.Fronts()[0].Name, got, want)
		}
	}
}

// waitUploadsInSync waits until every FrontNode reports the directory
// caught up and the farm's UploadsInSync condition is True.
func waitUploadsInSync(ctx context.Context, t *testing.T, tb *Testbed) {
	t.Helper()
	start := time.Now()
	var last string
	err := WaitFor(func() (bool, error) {
		var wf webfarmv1.WebFarm
		if err := tb.KubeClient().Get(ctx, client.ObjectKey{Namespace: SamplesNamespace, Name: WebFarmName}, &wf); err != nil {
			return false, err
		}
		cond := meta.FindStatusCondition(wf.Status.Conditions, webfarmv1.ConditionUploadsInSync)
		if cond == nil || cond.Status != "True" {
			last = fmt.Sprintf("UploadsInSync %+v", cond)
			return false, nil
		}
		for _, f := range tb.Fronts() {
			fn, err := tb.FrontNode(ctx, f.Name)
			if err != nil {
				return false, err
			}
			if len(fn.Status.Uploads) != 1 || !fn.Status.Uploads[0].CaughtUp {
				last = fmt.Sprintf("%s: uploads %+v", f.Name, fn.Status.Uploads)
				return false, nil
			}
		}
		return true, nil
	}, readyTimeout)
	if err != nil {
		t.Fatalf("uploads never in sync: %s (%v)", last, err)
	}
	t.Logf("uploads declared: every front caught up, UploadsInSync True, %v after the declaration", time.Since(start).Round(time.Millisecond))
}

// waitEveryFrontAnswers waits until reads through the VIP reach every
// front: a front catching up stays drained.
func waitEveryFrontAnswers(ctx context.Context, t *testing.T, c *http.Client, fronts int) {
	t.Helper()
	seen := map[string]bool{}
	err := WaitFor(func() (bool, error) {
		if resp, err := Get(ctx, c, VIPURL("/")); err == nil && resp.Status == http.StatusOK {
			seen[resp.Front] = true
		}
		return len(seen) == fronts, nil
	}, changeTimeout)
	if err != nil {
		t.Fatalf("reads through the VIP reached only %v", seen)
	}
}

// readUntilEveryFront reads path through the VIP until every front has
// served it whole, and returns when that was and how many reads missed.
func readUntilEveryFront(ctx context.Context, t *testing.T, c *http.Client, path string, body []byte, fronts int) (time.Time, int) {
	t.Helper()
	served := map[string]bool{}
	misses := 0
	err := WaitFor(func() (bool, error) {
		resp, err := getBytes(ctx, c, VIPURL(path))
		switch {
		case err == nil && resp.status == http.StatusOK && bytes.Equal(resp.body, body):
			served[resp.front] = true
		case err == nil && resp.status == http.StatusNotFound:
			misses++
		default:
			return false, fmt.Errorf("reading %s: %d from %s (%v)", path, resp.status, resp.front, err)
		}
		return len(served) == fronts, nil
	}, changeTimeout)
	if err != nil {
		t.Fatalf("%s: served whole by %v only: %v", path, served, err)
	}
	return time.Now(), misses
}

// put uploads body to url and returns the front that took it.
func put(ctx context.Context, c *http.Client, url string, body []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("PUT %s: %w", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent {
		return "", fmt.Errorf("PUT %s: %s", url, resp.Status)
	}
	return resp.Header.Get("X-Front"), nil
}

type bytesResponse struct {
	status int
	front  string
	body   []byte
}

func getBytes(ctx context.Context, c *http.Client, url string) (bytesResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return bytesResponse{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return bytesResponse{}, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return bytesResponse{status: resp.StatusCode, front: resp.Header.Get("X-Front"), body: b.Bytes()}, err
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
