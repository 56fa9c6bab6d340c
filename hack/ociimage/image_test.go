package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestSameInputsSameDigest builds each image twice, in different directories
// at different times, and wants the same digest and the same archive bytes;
// and a changed input must change the digest.
func TestSameInputsSameDigest(t *testing.T) {
	dir := t.TempDir()
	bin := writeFile(t, dir, "bin", "#!/bin/true\n")
	rootfs := filepath.Join(dir, "rootfs.tar")
	writeRootFS(t, rootfs)
	epoch := time.Unix(1_700_000_000, 0).UTC()
	specs := map[string]Spec{
		"empty base": {Name: "example.test/controller:1", Files: []File{{Src: bin, Dst: "/ctl", Mode: 0o755}},
			Entrypoint: []string{"/ctl"}, User: "65532:65532", Arch: "amd64", Epoch: epoch},
		"root filesystem": {Name: "example.test/agent:1", RootFS: rootfs, Files: []File{{Src: bin, Dst: "/usr/local/bin/agent", Mode: 0o755}},
			Entrypoint: []string{"/usr/bin/tini", "--", "/usr/local/bin/agent"}, Arch: "amd64", Epoch: epoch},
	}
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			d1, sum1 := buildArchive(t, spec)
			// Different mtimes on the inputs must not matter: only their contents do.
			if err := os.Chtimes(bin, time.Now(), time.Now()); err != nil {
				t.Fatal(err)
			}
			d2, sum2 := buildArchive(t, spec)
			if d1 != d2 || sum1 != sum2 {
				t.Fatalf("same inputs, different images: %s (archive %x) and %s (archive %x)", d1, sum1, d2, sum2)
			}
			changed := spec
			changed.Files = []File{{Src: writeFile(t, t.TempDir(), "bin", "#!/bin/false\n"), Dst: spec.Files[0].Dst, Mode: 0o755}}
			if d3, _ := buildArchive(t, changed); d3 == d1 {
				t.Fatalf("a changed binary kept the digest %s", d1)
			}
			t.Logf("%s: %s", spec.Name, d1)
		})
	}
}

// TestArchiveIsAValidLayout reads an archive back as an OCI image layout and
// checks every digest and size in it against its blobs.
func TestArchiveIsAValidLayout(t *testing.T) {
	dir := t.TempDir()
	spec := Spec{Name: "example.test/controller:1", Files: []File{{Src: writeFile(t, dir, "bin", "x"), Dst: "/ctl", Mode: 0o755}},
		Entrypoint: []string{"/ctl"}, Arch: "amd64", Epoch: time.Unix(0, 0).UTC()}
	out := filepath.Join(dir, "image.tar")
	digest, err := WriteArchive(spec, out)
	if err != nil {
		t.Fatal(err)
	}
	unpacked := filepath.Join(dir, "layout")
	untar(t, out, unpacked)
	idx, err := layout.ImageIndexFromPath(unpacked)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != digest || im.Manifests[0].Annotations["io.containerd.image.name"] != spec.Name {
		t.Fatalf("index.json: %+v, want one manifest %s named %s", im.Manifests, digest, spec.Name)
	}
	img, err := idx.Image(digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("invalid image: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.Entrypoint[0] != "/ctl" || !cf.Created.Time.Equal(spec.Epoch) {
		t.Fatalf("config: entrypoint %v created %v", cf.Config.Entrypoint, cf.Created)
	}
}

func buildArchive(t *testing.T, spec Spec) (string, [32]byte) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "image.tar")
	digest, err := WriteArchive(spec, out)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return digest.String(), sha256.Sum256(data)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeRootFS stands in for mmdebstrap's tarball: a directory and a file.
func writeRootFS(t *testing.T, p string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755},
		{Typeflag: tar.TypeReg, Name: "etc/os-release", Mode: 0o644, Size: 5},
	} {
		h.ModTime = time.Unix(1, 0)
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tw.Write([]byte("test\n")); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, h.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
