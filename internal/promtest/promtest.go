// Package promtest runs a real Prometheus (Debian's prometheus package) on
// loopback for tests, and reads its targets and alerts.
package promtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Start runs prometheus with config as prometheus.yml beside files (name
// to content: rules, token files), on a free loopback port, until t ends,
// and returns its URL once it is ready. It skips t when prometheus is not
// installed.
func Start(t testing.TB, config string, files map[string][]byte) string {
	t.Helper()
	binary, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (hack/install-packages.sh installs Debian's prometheus)")
	}
	dir := t.TempDir()
	files["prometheus.yml"] = []byte(config)
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var logs bytes.Buffer
	cmd := exec.Command(binary, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus:\n%s", logs.String())
		}
	})
	url := "http://" + addr
	WaitFor(t, time.Minute, "prometheus ready", func() (bool, error) {
		resp, err := http.Get(url + "/-/ready")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	return url
}

// Target is a scrape target as Prometheus last saw it.
type Target struct {
	Labels    map[string]string `json:"labels"`
	Health    string            `json:"health"`
	LastError string            `json:"lastError"`
}

// Targets returns the active targets of the Prometheus at url.
func Targets(url string) ([]Target, error) {
	var out struct {
		Data struct {
			ActiveTargets []Target `json:"activeTargets"`
		} `json:"data"`
	}
	err := getJSON(url+"/api/v1/targets", &out)
	return out.Data.ActiveTargets, err
}

// Alert is an alert pending or firing.
type Alert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

// Alerts returns the alerts of the Prometheus at url.
func Alerts(url string) ([]Alert, error) {
	var out struct {
		Data struct {
			Alerts []Alert `json:"alerts"`
		} `json:"data"`
	}
	err := getJSON(url+"/api/v1/alerts", &out)
	return out.Data.Alerts, err
}

// Firing returns the firing alerts named name.
func Firing(url, name string) ([]Alert, error) {
	all, err := Alerts(url)
	var out []Alert
	for _, a := range all {
		if a.Labels["alertname"] == name && a.State == "firing" {
			out = append(out, a)
		}
	}
	return out, err
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// WaitFor polls cond every 200ms for up to timeout; an error stops it.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return cond()
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
