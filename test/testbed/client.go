package testbed

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"time"
)

// DialInNamespace dials from inside the network namespace nsName: the socket
// is created on a thread that has entered the namespace, and keeps living
// there when the thread goes back.
//
// The dial is bounded by dialTimeout, whatever ctx says: http.Transport
// dials on a context without its request's deadline, and goes on after
// the request gave up. A SYN to a front that was lost waits two minutes
// for its answer, on a thread locked inside the namespace: at 20 requests
// a second, hundreds of threads.
func DialInNamespace(nsName string) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		var conn net.Conn
		err := ns(nsName).Do(func() error {
			d := net.Dialer{Timeout: dialTimeout}
			var err error
			conn, err = d.DialContext(ctx, network, address)
			return err
		})
		return conn, err
	}
}

// dialTimeout bounds a dial from a namespace: twice the longest request
// timeout of the testbed's clients (5 s), so that it cuts no request short.
const dialTimeout = 10 * time.Second

// ClientOptions shape an HTTP client of the client namespace.
type ClientOptions struct {
	// Cookies keeps cookies between requests (a browser's session); without
	// it every request is a new visitor.
	Cookies bool
	// KeepAlive reuses connections; without it every request opens a new
	// connection, so that it is balanced (and fails over) on its own.
	KeepAlive bool
	// Timeout bounds each request. Default 2s.
	Timeout time.Duration
}

// NewClient returns an HTTP client whose connections start in the client
// namespace (wf-client), at 10.99.0.100.
func NewClient(o ClientOptions) *http.Client {
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	c := &http.Client{
		Timeout: o.Timeout,
		Transport: &http.Transport{
			DialContext:       DialInNamespace(ClientNS),
			DisableKeepAlives: !o.KeepAlive,
			Proxy:             nil,
		},
		// A redirect is an answer; the scenarios look at it themselves.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if o.Cookies {
		c.Jar, _ = cookiejar.New(nil)
	}
	return c
}

// Response is what a scenario needs from one request.
type Response struct {
	Status int
	// Front is the front whose web server answered (its X-Front header),
	// empty when the answer came from HAProxy itself.
	Front  string
	Body   string
	Header http.Header
}

// Get sends a GET to url with c and reads the whole answer.
func Get(ctx context.Context, c *http.Client, url string) (Response, error) {
	return Do(ctx, c, http.MethodGet, url, nil)
}

// Do sends a request with optional headers and reads the whole answer.
func Do(ctx context.Context, c *http.Client, method, url string, header http.Header) (Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return Response{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("reading the answer of %s: %w", url, err)
	}
	return Response{
		Status: resp.StatusCode,
		Front:  resp.Header.Get("X-Front"),
		Body:   strings.TrimSpace(string(body)),
		Header: resp.Header,
	}, nil
}

// VIPURL is the farm's address as the client reaches it.
func VIPURL(path string) string { return "http://" + VIP + path }

// FrontURL is a front's web server, bypassing HAProxy.
func FrontURL(i int, path string) string {
	return fmt.Sprintf("http://%s:%d%s", FrontAddress(i), WebPort, path)
}
