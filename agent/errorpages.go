package agent

import (
	"fmt"
	"strconv"
)

// errorPages reads the error-page ConfigMap — one page per status code, keyed
// by the code — for the renderer, which checks the codes and pages and builds
// the responses HAProxy sends.
func errorPages(data map[string][]byte) (map[int][]byte, error) {
	pages := make(map[int][]byte, len(data))
	for key, page := range data {
		code, err := strconv.Atoi(key)
		if err != nil || strconv.Itoa(code) != key {
			return nil, fmt.Errorf("key %q: must be an HTTP status code such as \"503\"", key)
		}
		pages[code] = page
	}
	return pages, nil
}
