package haproxy

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Limits of an error page. HAProxy keeps each error file in one buffer
// (16 KiB by default, and refuses a file that does not fit); these leave room
// for HAProxy's own structures.
const (
	maxErrorBody     = 12 << 10
	maxErrorResponse = 14 << 10
	maxErrorHeaders  = 32
)

// errorCodes are the status codes HAProxy 2.6 accepts in `errorfile`.
var errorCodes = []int{200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504}

// Headers that describe the connection or the framing: Render writes its own.
var framingHeaders = []string{"connection", "content-length", "keep-alive", "transfer-encoding"}

// errorResponse returns the complete HTTP response HAProxy sends for code.
// page is either an HTML body or a complete response starting with "HTTP/1."
// whose headers are checked; either way the response is rebuilt from checked
// parts, so nothing in page can change its framing.
func errorResponse(code int, page []byte) ([]byte, error) {
	if !slices.Contains(errorCodes, code) {
		return nil, fmt.Errorf("status code %d: HAProxy serves only %v from error files", code, errorCodes)
	}
	headers, body := [][2]string(nil), page
	if bytes.HasPrefix(page, []byte("HTTP/1.")) {
		var err error
		if headers, body, err = parseResponse(code, page); err != nil {
			return nil, err
		}
	}
	if len(body) > maxErrorBody {
		return nil, fmt.Errorf("page of %d bytes: at most %d are allowed", len(body), maxErrorBody)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", code, http.StatusText(code))
	headers = withDefaultHeader(headers, "Content-Type", "text/html; charset=utf-8")
	headers = withDefaultHeader(headers, "Cache-Control", "no-cache")
	for _, h := range headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\nConnection: close\r\n\r\n", len(body))
	b.Write(body)
	if b.Len() > maxErrorResponse {
		return nil, fmt.Errorf("response of %d bytes: at most %d are allowed", b.Len(), maxErrorResponse)
	}
	return b.Bytes(), nil
}

// parseResponse splits a complete response into checked headers and body.
func parseResponse(code int, page []byte) ([][2]string, []byte, error) {
	head, body, ok := bytes.Cut(page, []byte("\r\n\r\n"))
	if !ok {
		return nil, nil, errors.New("response: no empty line (CRLF CRLF) ends the headers")
	}
	lines := strings.Split(string(head), "\r\n")
	if err := checkStatusLine(code, lines[0]); err != nil {
		return nil, nil, err
	}
	if len(lines)-1 > maxErrorHeaders {
		return nil, nil, fmt.Errorf("response: %d headers, at most %d are allowed", len(lines)-1, maxErrorHeaders)
	}
	var headers [][2]string
	for i, line := range lines[1:] {
		name, value, err := parseHeader(line)
		if err != nil {
			return nil, nil, fmt.Errorf("response: header line %d: %w", i+1, err)
		}
		lower := strings.ToLower(name)
		if lower == "content-length" && value != strconv.Itoa(len(body)) {
			return nil, nil, fmt.Errorf("response: Content-Length %q does not match the body's %d bytes", value, len(body))
		}
		if lower == "transfer-encoding" {
			return nil, nil, errors.New("response: Transfer-Encoding is not allowed in an error file")
		}
		if !slices.Contains(framingHeaders, lower) {
			headers = append(headers, [2]string{name, value})
		}
	}
	return headers, body, nil
}

func checkStatusLine(code int, line string) error {
	proto, rest, _ := strings.Cut(line, " ")
	status, reason, _ := strings.Cut(rest, " ")
	if proto != "HTTP/1.0" && proto != "HTTP/1.1" {
		return fmt.Errorf("response: status line %q: must start with HTTP/1.0 or HTTP/1.1", line)
	}
	if status != strconv.Itoa(code) {
		return fmt.Errorf("response: status line %q: status must be %d, the page's key", line, code)
	}
	if !printable(reason, false) {
		return fmt.Errorf("response: status line %q: the reason must be printable ASCII", line)
	}
	return nil
}

func parseHeader(line string) (name, value string, err error) {
	name, value, ok := strings.Cut(line, ":")
	if !ok || !isToken(name) {
		return "", "", fmt.Errorf("%q: must be <token>: <value>", line)
	}
	value = strings.Trim(value, " \t")
	if !printable(value, true) {
		return "", "", fmt.Errorf("%q: the value must be printable ASCII", line)
	}
	return name, value, nil
}

// isToken reports whether s is an HTTP token (RFC 9110).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func printable(s string, tabOK bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < ' ' && !(tabOK && c == '\t')) || c >= 0x7f {
			return false
		}
	}
	return true
}

func withDefaultHeader(headers [][2]string, name, value string) [][2]string {
	for _, h := range headers {
		if strings.EqualFold(h[0], name) {
			return headers
		}
	}
	return append(headers, [2]string{name, value})
}
