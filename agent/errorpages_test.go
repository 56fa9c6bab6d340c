package agent

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func TestErrorResponses(t *testing.T) {
	body := "<html><body>down for maintenance</body></html>\n"
	got, err := errorResponses(map[string][]byte{"503": []byte(body)})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(got[503])), nil)
	if err != nil {
		t.Fatalf("not an HTTP response: %v\n%s", err, got[503])
	}
	if resp.StatusCode != 503 || resp.ContentLength != int64(len(body)) {
		t.Errorf("status %d, length %d; want 503, %d", resp.StatusCode, resp.ContentLength, len(body))
	}
	if resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
}

func TestErrorResponsesRefused(t *testing.T) {
	for name, data := range map[string]map[string][]byte{
		"not a number":       {"oops": []byte("x")},
		"not an error code":  {"302": []byte("x")},
		"larger than buffer": {"503": bytes.Repeat([]byte("x"), maxErrorPage+1)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := errorResponses(data)
			if err == nil {
				t.Fatal("accepted")
			}
			for key := range data {
				if !strings.Contains(err.Error(), `key "`+key+`"`) {
					t.Errorf("error %q does not name the key %q", err, key)
				}
			}
		})
	}
}
