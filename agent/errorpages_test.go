package agent

import (
	"strings"
	"testing"
)

func TestErrorPages(t *testing.T) {
	got, err := errorPages(map[string][]byte{"503": []byte("<p>down</p>"), "404": []byte("<p>gone</p>")})
	if err != nil {
		t.Fatal(err)
	}
	if string(got[503]) != "<p>down</p>" || string(got[404]) != "<p>gone</p>" {
		t.Errorf("pages = %v", got)
	}
}

func TestErrorPagesRefuseKeysThatAreNoStatusCode(t *testing.T) {
	for _, key := range []string{"oops", "0503", "+503", " 503"} {
		_, err := errorPages(map[string][]byte{key: []byte("x")})
		if err == nil || !strings.Contains(err.Error(), `key "`+key+`"`) {
			t.Errorf("key %q: error %v, want one naming the key", key, err)
		}
	}
}
