package haproxy

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webfarm/webfarm/internal/netnstest"
)

// uploadedPath is the file that only one front holds, as right after an
// upload landed there.
const uploadedPath = "/uploads/new.jpg"

// uploadsFront is a front's web server that holds uploadedPath or not,
// and counts the requests it answered.
type uploadsFront struct {
	Front
	holds atomic.Bool
	// hits counts the requests for uploads, not the checks.
	hits atomic.Int64
}

func (f *uploadsFront) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/uploads/") {
		fmt.Fprint(rw, f.Name)
		return
	}
	f.hits.Add(1)
	if !f.holds.Load() || r.URL.Path != uploadedPath {
		http.NotFound(rw, r)
		return
	}
	fmt.Fprint(rw, f.Name)
}

// start serves f on the web port and on the drain port (its check).
func (f *uploadsFront) start(t *testing.T, ns *netnstest.NS) {
	t.Helper()
	srv := &http.Server{Handler: f}
	for _, port := range []uint16{nodeWebPort, nodeDrainPort} {
		l := ns.MustListen(t, netip.AddrPortFrom(f.Address, port))
		go func(l net.Listener) { _ = srv.Serve(l) }(l)
	}
	t.Cleanup(func() { _ = srv.Close() })
}

// TestNodeUploadsNotFoundRetried runs a real HAProxy before three fronts,
// one of which holds a file the others do not have yet. With an uploads
// directory declared, every GET of it finds it, each new client on
// whichever front round robin picks; a file no front holds costs
// retries+1 answers; a POST answered 404 is not sent again. The same farm
// without uploads answers some GETs 404: the retry is the declaration's.
func TestNodeUploadsNotFoundRetried(t *testing.T) {
	ns := newNamespace(t)
	p := newNodeProcess(t, ns)
	third := thirdFront(t, ns, "front3")
	fronts := []*uploadsFront{{Front: nodeFronts[0]}, {Front: nodeFronts[1]}, {Front: third}}
	fronts[2].holds.Store(true)
	retries := int32(3)
	c := checkedConfig(p, 100*time.Millisecond, 1)
	c.Farms[0].Spec.Backend.Retries = &retries
	c.Farms[0].Fronts = nil
	for _, f := range fronts {
		f.start(t, ns)
		c.Farms[0].Fronts = append(c.Farms[0].Fronts, f.Front)
	}
	client := nsClient(ns, false)
	url := "http://10.98.0.1:8080" + uploadedPath
	hits := func() (n int64) {
		for _, f := range fronts {
			n += f.hits.Load()
		}
		return n
	}
	everyFrontUp := func(s map[string]ServerStat) bool {
		return s["front1"].Status == "UP" && s["front2"].Status == "UP" && s["front3"].Status == "UP"
	}

	t.Run("without uploads", func(t *testing.T) {
		apply(t, p, c)
		waitStatus(t, p, "every front UP", everyFrontUp)
		missed := 0
		for range 9 {
			if _, _, err := get(client, url); err != nil {
				missed++
			}
		}
		t.Logf("without uploads declared: %d of 9 GETs answered 404 by a front without the file", missed)
		if missed == 0 {
			t.Fatal("no GET met a front without the file: round robin should have sent it some, the test would show nothing")
		}
	})

	c.Farms[0].Spec.Uploads = media()
	apply(t, p, c)
	waitStatus(t, p, "every front UP", everyFrontUp)
	t.Run("every GET finds the file", func(t *testing.T) {
		before := hits()
		const reads = 30
		for i := range reads {
			if body, _, err := get(client, url); err != nil || body != "front3" {
				t.Fatalf("GET %d: %q, %v; want it found on front3", i, body, err)
			}
		}
		t.Logf("%d GETs, every one found the file: %.2f answers from the fronts per GET", reads, float64(hits()-before)/reads)
	})
	t.Run("a file no front holds", func(t *testing.T) {
		before := hits()
		start := time.Now()
		resp, err := client.Get("http://10.98.0.1:8080/uploads/never-uploaded.jpg")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		took, answers := time.Since(start), hits()-before
		t.Logf("a real 404 took %d answers from the fronts and %v", answers, took.Round(time.Microsecond))
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d, want 404", resp.StatusCode)
		}
		if want := int64(retries) + 1; answers != want {
			t.Errorf("%d answers, want retries+1 = %d", answers, want)
		}
	})
	t.Run("a POST answered 404 is not sent again", func(t *testing.T) {
		fronts[2].holds.Store(false) // as if the file were deleted: every front answers 404
		for range 3 {
			before := hits()
			resp, err := client.Post(url, "text/plain", strings.NewReader("x"))
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if n := hits() - before; resp.StatusCode != http.StatusNotFound || n != 1 {
				t.Fatalf("POST: status %d after %d answers, want 404 after one", resp.StatusCode, n)
			}
		}
	})
}
