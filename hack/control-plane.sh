#!/usr/bin/env bash
# Builds the real control plane used by envtest and the testbed — kube-apiserver,
# etcd and kubectl — from the Go module proxy, since no package ships them here.
#
# Binaries are cached by version outside the checkout (a fresh clone reuses them)
# and linked into bin/k8s/<version>/, the directory envtest reads through
# KUBEBUILDER_ASSETS. Quick and idempotent once cached. Prints that directory.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/webfarm/control-plane/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}
assets=$root/bin/k8s/${K8S_VERSION}

log() { echo "control-plane: $*" >&2; }

# staging_modules lists the k8s.io modules that k8s.io/kubernetes keeps in its own
# staging tree; outside that tree each must be replaced by its published v0.x.y.
staging_modules() {
  local mod
  mod=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$mod"
}

build_kubernetes() {
  local work minor minor_number
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  minor="v0.${K8S_VERSION#v1.}"      # v1.37.2 -> v0.37.2
  minor_number="${K8S_VERSION#v1.}"
  minor_number="${minor_number%%.*}" # v1.37.2 -> 37
  (
    cd "$work"
    go mod init webfarm.local/control-plane >/dev/null 2>&1
    for m in $(staging_modules); do
      go mod edit -replace "$m=$m@$minor"
    done
    go mod edit -require "k8s.io/kubernetes@${K8S_VERSION}"
    cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    go mod tidy >/dev/null
    local v=k8s.io/component-base/version
    local ldflags="-s -w -X $v.gitVersion=${K8S_VERSION} -X $v.gitMajor=1 -X $v.gitMinor=${minor_number}"
    CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$cache/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
  )
}

build_etcd() {
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  (
    cd "$work"
    go mod init webfarm.local/etcd >/dev/null 2>&1
    cat >main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    go mod edit -require "go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
    go mod tidy >/dev/null
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$cache/etcd" .
  )
}

mkdir -p "$cache"
if [ ! -x "$cache/kube-apiserver" ] || [ ! -x "$cache/kubectl" ]; then
  log "building kube-apiserver and kubectl ${K8S_VERSION} from the module proxy (several minutes on first use)"
  build_kubernetes
fi
if [ ! -x "$cache/etcd" ]; then
  log "building etcd ${ETCD_VERSION} from the module proxy"
  build_etcd
fi

mkdir -p "$assets"
for b in kube-apiserver etcd kubectl; do
  ln -sfn "$cache/$b" "$assets/$b"
done
echo "$assets"
