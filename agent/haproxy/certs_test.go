package haproxy

import (
	"slices"
	"testing"
)

// TestChangedCerts: only a change of certificate bundles, and nothing
// else, can go through the runtime API.
func TestChangedCerts(t *testing.T) {
	cfg := []byte("global\n")
	in := installedFiles{cfg: cfg, files: map[string][]byte{
		"certs/site_a.pem": []byte("A"), "certs/default.pem": []byte("D"),
		"certs/http_x.list": []byte("certs/site_a.pem a.example.com\n"), "errors/x/503.http": []byte("E"),
	}}
	with := func(path, content string) map[string][]byte {
		files := map[string][]byte{}
		for k, v := range in.files {
			files[k] = v
		}
		if content == "" {
			delete(files, path)
		} else {
			files[path] = []byte(content)
		}
		return files
	}
	for _, tc := range []struct {
		name  string
		cfg   string
		files map[string][]byte
		want  []string
		ok    bool
	}{
		{"nothing changed", "global\n", in.files, nil, false},
		{"a site's certificate", "global\n", with("certs/site_a.pem", "A2"), []string{"certs/site_a.pem"}, true},
		{"the default certificate", "global\n", with("certs/default.pem", "D2"), []string{"certs/default.pem"}, true},
		{"and the configuration", "global\n#\n", with("certs/site_a.pem", "A2"), nil, false},
		{"a crt-list", "global\n", with("certs/http_x.list", "certs/site_a.pem b.example.com\n"), nil, false},
		{"an error file", "global\n", with("errors/x/503.http", "E2"), nil, false},
		{"a new certificate", "global\n", with("certs/site_b.pem", "B"), nil, false},
		{"a certificate gone", "global\n", with("certs/site_a.pem", ""), nil, false},
	} {
		got, ok := in.changedCerts([]byte(tc.cfg), tc.files)
		if ok != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v %v, want %v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// TestCertPayload: the runtime API ends a payload at an empty line, so a
// bundle is sent without any.
func TestCertPayload(t *testing.T) {
	got, err := certPayload([]byte("-----BEGIN CERTIFICATE-----\r\nAAA\n-----END CERTIFICATE-----\n\n-----BEGIN PRIVATE KEY-----\nBBB\n-----END PRIVATE KEY-----\n"))
	want := "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nBBB\n-----END PRIVATE KEY-----"
	if err != nil || got != want {
		t.Errorf("certPayload: %q, %v; want %q", got, err, want)
	}
	if _, err := certPayload([]byte("\n \n")); err == nil {
		t.Error("an empty bundle was accepted")
	}
}
