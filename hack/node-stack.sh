#!/usr/bin/env bash
# Builds what a node of the local cluster runs besides the kubelet (which
# hack/control-plane.sh builds with the rest of Kubernetes): containerd v2 with
# ctr and its runc shim, and the CNI plugins, from the Go module proxy. runc
# itself is Debian's (hack/install-packages.sh).
#
# Cached by version outside the checkout, as the control plane is, and linked
# into bin/node-stack/. Quick and idempotent once cached. Prints that directory.
set -euo pipefail

CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
CNI_PLUGINS_VERSION=${CNI_PLUGINS_VERSION:-v1.10.0}
root=$(cd "$(dirname "$0")/.." && pwd)
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/webfarm/node-stack
containerd_cache=$cache_root/containerd-${CONTAINERD_VERSION}
cni_cache=$cache_root/cni-plugins-${CNI_PLUGINS_VERSION}
out=$root/bin/node-stack
containerd_commands=(containerd ctr containerd-shim-runc-v2)
cni_plugins=(main/bridge main/loopback ipam/host-local meta/portmap)

log() { echo "node-stack: $*" >&2; }

# build_module builds packages of one module at one version into dest, whole
# or not at all. ldflags and tags are the module's own release settings.
build_module() {
  local module=$1 version=$2 dest=$3 ldflags=$4 tags=$5
  shift 5
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"; trap - RETURN' RETURN
  (
    cd "$work"
    go mod init webfarm.local/node-stack >/dev/null 2>&1
    go mod edit -require "$module@$version"
    {
      printf '//go:build tools\n\npackage tools\n\nimport (\n'
      for p in "$@"; do printf '\t_ "%s"\n' "$p"; done
      printf ')\n'
    } >tools.go
    go mod tidy >/dev/null
    mkdir out
    CGO_ENABLED=0 go build -trimpath -tags "$tags" -ldflags "-s -w $ldflags" -o out/ "$@"
    rm -rf "$dest" && mv out "$dest"
  )
}

missing() {
  local dir=$1
  shift
  for b in "$@"; do [ -x "$dir/$(basename "$b")" ] || return 0; done
  return 1
}

# ensure builds the packages of a module at a version into dest unless all
# their commands are there already.
ensure() {
  local module=$1 version=$2 dest=$3 ldflags=$4 tags=$5
  shift 5
  missing "$dest" "$@" || return 0
  log "building ${module} ${version} from the module proxy"
  build_module "$module" "$version" "$dest" "$ldflags" "$tags" "$@"
}

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
flock 9
cd_mod=github.com/containerd/containerd/v2
# The snapshotters that need cgo or kernel parts this stack does not use are
# left out, as containerd's static builds do.
ensure "$cd_mod" "$CONTAINERD_VERSION" "$containerd_cache" \
  "-X $cd_mod/version.Version=${CONTAINERD_VERSION} -X $cd_mod/version.Package=$cd_mod" \
  "no_btrfs no_devmapper no_zfs" "${containerd_commands[@]/#/$cd_mod/cmd/}"
cni_mod=github.com/containernetworking/plugins
ensure "$cni_mod" "$CNI_PLUGINS_VERSION" "$cni_cache" \
  "-X $cni_mod/pkg/utils/buildversion.BuildVersion=${CNI_PLUGINS_VERSION}" \
  "" "${cni_plugins[@]/#/$cni_mod/plugins/}"
flock -u 9

mkdir -p "$out/cni"
for c in "${containerd_commands[@]}"; do ln -sfn "$containerd_cache/$c" "$out/$c"; done
for p in "${cni_plugins[@]}"; do ln -sfn "$cni_cache/$(basename "$p")" "$out/cni/$(basename "$p")"; done
echo "$out"
