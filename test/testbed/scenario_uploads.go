package testbed

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// demoUploadSizes are the files the demo uploads: a thumbnail, a photo, a
// small PDF.
var demoUploadSizes = []int{4 << 10, 256 << 10, 1 << 20}

// UploadsScenario: the samples' farm declares an uploads directory; a
// client uploads files through the VIP, each landing on the front HAProxy
// picks, and reads each back through the VIP with a new connection per
// read from the end of its upload on: every read finds it, also before it
// reached every front, and every front serves it once it has.
func UploadsScenario(ctx context.Context, tb *Testbed) (*Result, error) {
	r := newResult("8. uploads")
	if !tb.opts.Uploads {
		return r, fmt.Errorf("the uploads scenario needs a testbed started with Options.Uploads")
	}
	tb.say("\n== 8. Uploads: each front's nginx takes PUT /uploads/ into its own directory; the agents keep the directories in step (inotify + rsync)")
	start := time.Now()
	if err := tb.EnableUploads(); err != nil {
		return r, err
	}
	caughtUp, err := tb.waitUploadsInSync(ctx)
	if err != nil {
		return r, err
	}
	r.figure("uploads-declared", "declaration to every front caught up", caughtUp)
	c := NewClient(ClientOptions{Timeout: 5 * time.Second})
	if err := waitEveryFrontAnswers(c, len(tb.fronts)); err != nil {
		return r, err
	}
	var spread []time.Duration
	reads := 0
	for i, size := range demoUploadSizes {
		var u uploaded
		if u, err = uploadAndRead(ctx, c, tb, fmt.Sprintf("/uploads/demo/%d.bin", i), size); err != nil {
			break
		}
		tb.say("   %s", u)
		spread, reads = append(spread, u.everywhere), reads+u.reads
	}
	if err := r.check(err == nil, "every read through the VIP finds the upload",
		"%d uploads; %d reads before each was on every front, all found it (%v)", len(spread), reads, err); err != nil {
		return r, err
	}
	r.figure("upload-everywhere", "upload to on every front (slowest)", slices.Max(spread))
	// The farm goes back to the samples' declaration, as the later
	// steps of the demo expect it.
	if err := tb.DisableUploads(); err != nil {
		return r, err
	}
	r.Figures["scenario"] = time.Since(start)
	tb.say("   uploads declaration removed (the files stay); the uploads scenario took %s", round(time.Since(start)))
	return r, tb.WaitReady(ctx, readyTimeout)
}

// uploaded is one file uploaded through the VIP and read back.
type uploaded struct {
	path, front string
	size        int
	// everywhere is how long after the upload began every front held it.
	everywhere time.Duration
	// reads were made before that; all found it.
	reads int
}

func (u uploaded) String() string {
	return fmt.Sprintf("%s (%d bytes) uploaded to %s: on every front %s after the upload began; %d reads through the VIP meanwhile, every one found it; then served by every front",
		u.path, u.size, u.front, round(u.everywhere), u.reads)
}

// uploadAndRead uploads size random bytes to path through the VIP, reads
// them back until every front holds them (readWhileSpreading), then until
// every front has served them.
func uploadAndRead(ctx context.Context, c *http.Client, tb *Testbed, path string, size int) (uploaded, error) {
	u := uploaded{path: path, size: size}
	body := make([]byte, size)
	_, _ = rand.Read(body)
	start := time.Now()
	var err error
	if u.front, err = put(ctx, c, VIPURL(path), body); err != nil {
		return u, err
	}
	everywhere, reads, err := readWhileSpreading(ctx, c, tb, path, body)
	u.everywhere, u.reads = everywhere.Sub(start), reads
	if err != nil {
		return u, err
	}
	return u, servedByEvery(ctx, c, path, body, len(tb.fronts))
}

// readWhileSpreading reads path through the VIP, a new connection each
// time, until every front's directory holds it whole; every read must find
// it whole. It returns when every front held it and how many reads were
// made before.
func readWhileSpreading(ctx context.Context, c *http.Client, tb *Testbed, path string, body []byte) (time.Time, int, error) {
	deadline := time.Now().Add(changeTimeout)
	for reads := 0; ; reads++ {
		holders, err := frontsHolding(tb, path, body)
		switch {
		case err != nil:
			return time.Time{}, reads, err
		case len(holders) == len(tb.fronts):
			return time.Now(), reads, nil
		case time.Now().After(deadline):
			return time.Time{}, reads, fmt.Errorf("%s: held by %v only, %v after the upload", path, holders, changeTimeout)
		}
		resp, err := getBytes(ctx, c, VIPURL(path))
		if err != nil || resp.status != http.StatusOK || !bytes.Equal(resp.body, body) {
			return time.Time{}, reads, fmt.Errorf("%s, read %d while only %v held it: %d from %q (%v)", path, reads+1, holders, resp.status, resp.front, err)
		}
	}
}

// frontsHolding is the fronts whose uploads directory holds path whole.
func frontsHolding(tb *Testbed, path string, body []byte) ([]string, error) {
	var out []string
	for _, f := range tb.fronts {
		data, err := os.ReadFile(filepath.Join(f.UploadsDir(), strings.TrimPrefix(path, "/uploads/")))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if bytes.Equal(data, body) {
			out = append(out, f.Name)
		}
	}
	return out, nil
}

// servedByEvery reads path through the VIP until every front has served
// it whole; any other answer fails.
func servedByEvery(ctx context.Context, c *http.Client, path string, body []byte, fronts int) error {
	served := map[string]bool{}
	for i := 0; len(served) < fronts; i++ {
		if i == 10*fronts {
			return fmt.Errorf("%s: served by %v only in %d reads", path, served, i)
		}
		resp, err := getBytes(ctx, c, VIPURL(path))
		if err != nil || resp.status != http.StatusOK || !bytes.Equal(resp.body, body) {
			return fmt.Errorf("%s on every front: %d from %q (%v)", path, resp.status, resp.front, err)
		}
		served[resp.front] = true
	}
	return nil
}

// waitUploadsInSync waits until every FrontNode reports the directory
// caught up and the farm's UploadsInSync condition is True, and returns
// how long that took.
func (tb *Testbed) waitUploadsInSync(ctx context.Context) (time.Duration, error) {
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
		for _, f := range tb.fronts {
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
		return 0, fmt.Errorf("uploads never in sync: %s (%w)", last, err)
	}
	tb.say("   every front caught up, UploadsInSync True, %s after the declaration", round(time.Since(start)))
	return time.Since(start), nil
}

// waitEveryFrontAnswers waits until reads through the VIP reach every
// front: a front catching up stays drained.
func waitEveryFrontAnswers(c *http.Client, fronts int) error {
	seen := map[string]bool{}
	err := WaitFor(func() (bool, error) {
		if resp, err := Get(context.Background(), c, VIPURL("/")); err == nil && resp.Status == http.StatusOK {
			seen[resp.Front] = true
		}
		return len(seen) == fronts, nil
	}, changeTimeout)
	if err != nil {
		return fmt.Errorf("reads through the VIP reached only %v", seen)
	}
	return nil
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
