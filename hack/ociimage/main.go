// Command ociimage assembles a container image without a daemon and writes it
// as an OCI archive: an OCI image layout in one tar, which `ctr images import`,
// skopeo and crane read. `make images` builds webfarm's two images with it.
//
// The image is an optional root filesystem tarball (the agent's Debian, made by
// mmdebstrap) as its first layer and the given files (the static binaries) as
// its second. Every timestamp is --epoch (SOURCE_DATE_EPOCH by default), every
// owner root and every list sorted, so the same inputs give the same digest,
// byte for byte the same archive.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	var spec Spec
	var files, entrypoint, env listFlag
	var out string
	var epoch int64
	fs := flag.NewFlagSet("ociimage", flag.ContinueOnError)
	fs.StringVar(&spec.Name, "name", "", "the image's reference, e.g. ghcr.io/webfarm/webfarm-agent:0.1.0 (required)")
	fs.StringVar(&spec.RootFS, "rootfs", "", "a root filesystem tarball for the first layer (none: an empty base)")
	fs.Var(&files, "file", "SRC:DST[:MODE] a file of the second layer, MODE octal (0755 by default); repeatable")
	fs.Var(&entrypoint, "entrypoint", "one word of the entrypoint; repeatable, in order")
	fs.Var(&env, "env", "KEY=VALUE of the image's environment; repeatable")
	fs.StringVar(&spec.User, "user", "", "the user the image runs as, e.g. 65532:65532")
	fs.StringVar(&spec.Arch, "arch", runtime.GOARCH, "the image's architecture")
	fs.Int64Var(&epoch, "epoch", sourceDateEpoch(), "every timestamp of the image, in Unix seconds (default $SOURCE_DATE_EPOCH, else 0)")
	fs.StringVar(&out, "out", "", "the OCI archive to write (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if spec.Name == "" || out == "" {
		return fmt.Errorf("--name and --out are required")
	}
	var err error
	if spec.Files, err = parseFiles(files); err != nil {
		return err
	}
	spec.Entrypoint, spec.Env, spec.Epoch = entrypoint, env, time.Unix(epoch, 0).UTC()
	digest, err := WriteArchive(spec, out)
	if err != nil {
		return err
	}
	fmt.Println(digest)
	return nil
}

// sourceDateEpoch reads the reproducible-builds convention's variable.
func sourceDateEpoch() int64 {
	n, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func parseFiles(args []string) ([]File, error) {
	var files []File
	for _, a := range args {
		parts := strings.Split(a, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !strings.HasPrefix(parts[1], "/") {
			return nil, fmt.Errorf("--file %q: want SRC:/DST[:MODE]", a)
		}
		f := File{Src: parts[0], Dst: parts[1], Mode: 0o755}
		if len(parts) == 3 {
			m, err := strconv.ParseUint(parts[2], 8, 32)
			if err != nil {
				return nil, fmt.Errorf("--file %q: mode: %w", a, err)
			}
			f.Mode = os.FileMode(m)
		}
		files = append(files, f)
	}
	return files, nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
