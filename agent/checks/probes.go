package checks

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/webfarm/webfarm/agent/command"
)

// Probe is one run of a check: a nil error passes; the message says what
// it saw. It must return by ctx's deadline.
type Probe interface {
	Run(ctx context.Context) (string, error)
}

// loopback is where a check goes when it names no host: the node's own
// service.
const loopback = "127.0.0.1"

// HostPort is where a check goes: host:port, the node's own service on
// loopback when host is empty.
func HostPort(host string, port int32) string {
	if host == "" {
		host = loopback
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// TCPProbe passes when a connection to Address opens.
type TCPProbe struct{ Address string }

func (p TCPProbe) Run(ctx context.Context) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.Address)
	if err != nil {
		return "", fmt.Errorf("connecting to %s: %w", p.Address, err)
	}
	c.Close()
	return "connected to " + p.Address, nil
}

// HTTPProbe passes when a GET of URL answers 2xx or 3xx; it follows no
// redirect.
type HTTPProbe struct {
	URL    string
	Client *http.Client
}

// NewHTTPProbe checks path on host:port over plain HTTP, with a client of
// its own that keeps no connection between runs: each run proves that the
// server accepts.
func NewHTTPProbe(host string, port int32, path string) HTTPProbe {
	return HTTPProbe{
		URL: "http://" + HostPort(host, port) + path,
		Client: &http.Client{
			Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

func (p HTTPProbe) Run(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return "", fmt.Errorf("requesting %s: %w", p.URL, err)
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return "", fmt.Errorf("requesting %s: %w", p.URL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return "", fmt.Errorf("GET %s: %s", p.URL, resp.Status)
	}
	return "GET " + p.URL + ": " + resp.Status, nil
}

// ExecProbe runs a script of the agent's checks directory; exit 0 passes.
type ExecProbe struct {
	Path string
	Args []string
	// Env tells the script which FailoverIP it checks.
	Env []string
}

// NewExecProbe resolves script within dir. The API allows a bare file name
// only; this refuses anything else too.
func NewExecProbe(dir, script string, args, env []string) (ExecProbe, error) {
	if dir == "" {
		return ExecProbe{}, fmt.Errorf("exec check %q: the agent has no checks directory (--checks-dir)", script)
	}
	if script != filepath.Base(script) || script == "." || script == ".." {
		return ExecProbe{}, fmt.Errorf("exec check %q: not a file name", script)
	}
	return ExecProbe{Path: filepath.Join(dir, script), Args: args, Env: env}, nil
}

func (p ExecProbe) Run(ctx context.Context) (string, error) {
	timeout := time.Hour
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	out, err := command.Run(ctx, p.Path, p.Args, p.Env, timeout)
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", filepath.Base(p.Path), err, lastLine(out))
	}
	return lastLine(out), nil
}

// lastLine is the last non-empty line of out, at most 256 bytes.
func lastLine(out string) string {
	for len(out) > 0 && (out[len(out)-1] == '\n' || out[len(out)-1] == '\r') {
		out = out[:len(out)-1]
	}
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] == '\n' {
			out = out[i+1:]
			break
		}
	}
	if len(out) > 256 {
		out = out[len(out)-256:]
	}
	return out
}
