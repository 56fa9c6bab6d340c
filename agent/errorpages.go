package agent

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strconv"
)

// errorCodes are the status codes HAProxy 2.6 answers itself and accepts an
// errorfile for.
var errorCodes = []int{200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504}

// maxErrorPage bounds a page: HAProxy sends an errorfile from one buffer
// (tune.bufsize, 16 KiB by default), status line and headers included.
const maxErrorPage = 12 << 10

// errorResponses turns the error-page ConfigMap — one HTML body per status
// code — into the complete HTTP responses HAProxy sends as they are.
func errorResponses(data map[string][]byte) (map[int][]byte, error) {
	responses := make(map[int][]byte, len(data))
	for key, body := range data {
		code, err := strconv.Atoi(key)
		if err != nil || !slices.Contains(errorCodes, code) {
			return nil, fmt.Errorf("key %q: must be a status code HAProxy answers itself, one of %v", key, errorCodes)
		}
		if len(body) > maxErrorPage {
			return nil, fmt.Errorf("key %q: page of %d bytes, more than the %d HAProxy can send", key, len(body), maxErrorPage)
		}
		responses[code] = errorResponse(code, body)
	}
	return responses, nil
}

func errorResponse(code int, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.0 %d %s\r\n", code, http.StatusText(code))
	b.WriteString("Cache-Control: no-cache\r\n")
	b.WriteString("Connection: close\r\n")
	b.WriteString("Content-Type: text/html; charset=utf-8\r\n")
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	return b.Bytes()
}
