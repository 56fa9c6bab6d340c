package serving

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/webfarm/webfarm/agent/vip"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// DialFunc opens a connection, as net.Dialer.DialContext does; tests give
// one that dials inside their namespace.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// ProxyProbe asks the node's own HAProxy, on loopback, for the path every
// farm frontend answers itself (webfarmv1.ServingCheckPath): a 200 proves
// that the frontend accepts and serves HTTP, whichever backend is up.
type ProxyProbe struct {
	client *http.Client
}

// NewProxyProbe returns a probe that dials with dial (nil: the default
// dialer).
func NewProxyProbe(dial DialFunc) *ProxyProbe {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	return &ProxyProbe{client: &http.Client{
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true},
		// A redirect would be somebody else's answer, not HAProxy's own.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Check returns nil when the frontend on port answers 200 before ctx ends.
func (p *ProxyProbe) Check(ctx context.Context, port int32) error {
	url := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))) + webfarmv1.ServingCheckPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			return errors.New("no answer within the check's timeout")
		}
		return errors.Unwrap(err) // the url.Error repeats the URL
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

// LinkProbe reads the state of the link that carries an address.
type LinkProbe struct {
	Handle *netlink.Handle
}

// Check returns nil when the link is up: administratively up, with a
// carrier, and in operational state up (or unknown, as for links that do
// not report one, like dummies). name may be empty: then the link that
// holds nodeAddr, where a failover address goes by default.
func (p LinkProbe) Check(name string, nodeAddr netip.Addr) error {
	link, err := p.find(name, nodeAddr)
	if err != nil {
		return err
	}
	a := link.Attrs()
	up := a.RawFlags&unix.IFF_UP != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0 &&
		(a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown)
	if !up {
		return fmt.Errorf("link %s is down (operational state %s)", a.Name, a.OperState)
	}
	return nil
}

func (p LinkProbe) find(name string, nodeAddr netip.Addr) (netlink.Link, error) {
	if name == "" {
		return vip.LinkWithAddress(p.Handle, nodeAddr)
	}
	link, err := p.Handle.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("finding link %s: %w", name, err)
	}
	return link, nil
}
