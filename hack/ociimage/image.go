package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Spec is everything an image is made of: equal specs over equal files give
// equal digests.
type Spec struct {
	Name       string
	RootFS     string
	Files      []File
	Entrypoint []string
	Env        []string
	User       string
	Arch       string
	Epoch      time.Time
}

// File is one file of the image's top layer.
type File struct {
	Src, Dst string
	Mode     os.FileMode
}

// Build assembles the image that spec describes.
func Build(spec Spec) (v1.Image, error) {
	var layers []v1.Layer
	if spec.RootFS != "" {
		l, err := tarball.LayerFromFile(spec.RootFS, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, fmt.Errorf("root filesystem layer: %w", err)
		}
		layers = append(layers, l)
	}
	if len(spec.Files) > 0 {
		data, err := filesTar(spec.Files, spec.Epoch)
		if err != nil {
			return nil, err
		}
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, fmt.Errorf("files layer: %w", err)
		}
		layers = append(layers, l)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		// An explicit history entry: the default one would carry no time,
		// which is reproducible but tells a reader nothing.
		adds[i] = mutate.Addendum{Layer: l, MediaType: types.OCILayer,
			History: v1.History{Created: v1.Time{Time: spec.Epoch}, CreatedBy: "webfarm ociimage"}}
	}
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, fmt.Errorf("append layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", spec.Arch
	cf.Created = v1.Time{Time: spec.Epoch}
	cf.Config.Entrypoint = spec.Entrypoint
	cf.Config.Env = spec.Env
	cf.Config.User = spec.User
	return mutate.ConfigFile(img, cf)
}

// filesTar is the top layer: the files and their parent directories, root's,
// stamped with epoch, in path order.
func filesTar(files []File, epoch time.Time) ([]byte, error) {
	entries := map[string]*tar.Header{}
	for _, f := range files {
		for d := path.Dir(f.Dst); d != "/"; d = path.Dir(d) {
			name := strings.TrimPrefix(d, "/") + "/"
			entries[name] = &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}
		}
	}
	contents := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f.Src)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f.Src, err)
		}
		name := strings.TrimPrefix(f.Dst, "/")
		contents[name] = data
		entries[name] = &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(f.Mode), Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if err := tw.WriteHeader(entries[n]); err != nil {
			return nil, fmt.Errorf("tar %s: %w", n, err)
		}
		if _, err := tw.Write(contents[n]); err != nil {
			return nil, fmt.Errorf("tar %s: %w", n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close tar: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteArchive builds the image and writes it to out as an OCI archive named
// spec.Name; it returns the manifest's digest.
func WriteArchive(spec Spec, out string) (v1.Hash, error) {
	img, err := Build(spec)
	if err != nil {
		return v1.Hash{}, err
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("create archive: %w", err)
	}
	defer os.Remove(tmp)
	digest, err := writeLayout(f, img, spec.Name, spec.Epoch)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close archive: %w", cerr)
	}
	if err != nil {
		return v1.Hash{}, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return v1.Hash{}, fmt.Errorf("move archive into place: %w", err)
	}
	return digest, nil
}

// writeLayout writes the OCI image layout (oci-layout, index.json, blobs) as a
// tar, entries in a fixed order.
func writeLayout(w io.Writer, img v1.Image, name string, epoch time.Time) (v1.Hash, error) {
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("manifest digest: %w", err)
	}
	manifest, err := img.RawManifest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("manifest: %w", err)
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("config: %w", err)
	}
	index, err := indexJSON(digest, int64(len(manifest)), name)
	if err != nil {
		return v1.Hash{}, err
	}
	tw := tar.NewWriter(w)
	put := func(name string, size int64, r io.Reader) error {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		if _, err := io.Copy(tw, r); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		return nil
	}
	putBytes := func(name string, b []byte) error { return put(name, int64(len(b)), bytes.NewReader(b)) }
	if err := putBytes("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return v1.Hash{}, err
	}
	if err := putBytes("index.json", index); err != nil {
		return v1.Hash{}, err
	}
	if err := putBytes(blobPath(digest), manifest); err != nil {
		return v1.Hash{}, err
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("config digest: %w", err)
	}
	if err := putBytes(blobPath(cfgName), config); err != nil {
		return v1.Hash{}, err
	}
	if err := putLayers(img, put); err != nil {
		return v1.Hash{}, err
	}
	if err := tw.Close(); err != nil {
		return v1.Hash{}, fmt.Errorf("close archive: %w", err)
	}
	return digest, nil
}

func putLayers(img v1.Image, put func(string, int64, io.Reader) error) error {
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("layers: %w", err)
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return fmt.Errorf("layer digest: %w", err)
		}
		size, err := l.Size()
		if err != nil {
			return fmt.Errorf("layer size: %w", err)
		}
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
		err = put(blobPath(d), size, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// indexJSON names the image twice: containerd's import reads
// io.containerd.image.name, the OCI convention's tools the ref.name tag.
func indexJSON(digest v1.Hash, size int64, name string) ([]byte, error) {
	tag := name
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		tag = name[i+1:]
	}
	index := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: types.OCIManifestSchema1,
			Digest:    digest,
			Size:      size,
			Annotations: map[string]string{
				"io.containerd.image.name":          name,
				"org.opencontainers.image.ref.name": tag,
			},
		}},
	}
	b, err := json.Marshal(index)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	return b, nil
}
