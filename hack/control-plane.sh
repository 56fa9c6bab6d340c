#!/usr/bin/env bash
# Builds the real Kubernetes used by envtest, the testbed and the local cluster —
# kube-apiserver, kubectl, kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy and etcd — from the Go module proxy, since no package ships them.
#
# envtest and the testbed need kube-apiserver and kubectl only; the local
# cluster (CONTROL_PLANE_NODES=1: make cluster, make test-cluster) needs the
# node commands too. Each set comes from one `go build`, so its commands share
# their compiles and one dependency graph; it is cached by version outside the
# checkout (a fresh clone reuses it), and a cached full set serves the smaller
# one. etcd is cached beside them by its own version. All are linked into
# bin/k8s/<version>/, the directory envtest reads through KUBEBUILDER_ASSETS.
# Quick and idempotent once cached. Prints that directory.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}
root=$(cd "$(dirname "$0")/.." && pwd)
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/webfarm/control-plane
etcd_cache=$cache_root/etcd-${ETCD_VERSION}
assets=$root/bin/k8s/${K8S_VERSION}
full_cache=$cache_root/kubernetes-${K8S_VERSION}
full_commands=(kube-apiserver kubectl kube-controller-manager kube-scheduler kubelet kube-proxy)
if [ "${CONTROL_PLANE_NODES:-}" = 1 ]; then
  k8s_cache=$full_cache
  k8s_commands=("${full_commands[@]}")
else
  k8s_cache=$cache_root/kubernetes-${K8S_VERSION}-apiserver
  k8s_commands=(kube-apiserver kubectl)
fi

log() { echo "control-plane: $*" >&2; }

# staging_modules lists the k8s.io modules that k8s.io/kubernetes keeps in its own
# staging tree; outside that tree each must be replaced by its published v0.x.y.
staging_modules() {
  local mod
  mod=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$mod"
}

# build_kubernetes builds every command into a fresh directory, then moves it
# into place whole: a build cut short never passes for a cached one.
build_kubernetes() {
  local work minor minor_number c
  work=$(mktemp -d)
  trap 'rm -rf "$work"; trap - RETURN' RETURN
  minor="v0.${K8S_VERSION#v1.}"      # v1.37.2 -> v0.37.2
  minor_number="${K8S_VERSION#v1.}"
  minor_number="${minor_number%%.*}" # v1.37.2 -> 37
  (
    cd "$work"
    go mod init webfarm.local/kubernetes >/dev/null 2>&1
    for m in $(staging_modules); do
      go mod edit -replace "$m=$m@$minor"
    done
    go mod edit -require "k8s.io/kubernetes@${K8S_VERSION}"
    {
      printf '//go:build tools\n\npackage tools\n\nimport (\n'
      for c in "${k8s_commands[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
      printf ')\n'
    } >tools.go
    go mod tidy >/dev/null
    local v=k8s.io/component-base/version
    local ldflags="-s -w -X $v.gitVersion=${K8S_VERSION} -X $v.gitMajor=1 -X $v.gitMinor=${minor_number}"
    local pkgs=()
    for c in "${k8s_commands[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    mkdir out
    CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o out/ "${pkgs[@]}"
    rm -rf "$k8s_cache" && mv out "$k8s_cache"
  )
}

build_etcd() {
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"; trap - RETURN' RETURN
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
    mkdir out
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o out/etcd .
    rm -rf "$etcd_cache" && mv out "$etcd_cache"
  )
}

mkdir -p "$cache_root"
# One build at a time on a shared machine: a second caller waits for the first
# and then finds its binaries cached.
exec 9>"$cache_root/.lock"
flock 9
# cached tells whether dir holds every command of k8s_commands.
cached() {
  local c
  for c in "${k8s_commands[@]}"; do [ -x "$1/$c" ] || return 1; done
}
if cached "$full_cache"; then
  k8s_cache=$full_cache
elif ! cached "$k8s_cache"; then
  log "building ${k8s_commands[*]} ${K8S_VERSION} from the module proxy (10 to 30 minutes on 2 cores the first time)"
  build_kubernetes
fi
if [ ! -x "$etcd_cache/etcd" ]; then
  log "building etcd ${ETCD_VERSION} from the module proxy"
  build_etcd
fi
flock -u 9

mkdir -p "$assets"
for c in "${k8s_commands[@]}"; do
  ln -sfn "$k8s_cache/$c" "$assets/$c"
done
ln -sfn "$etcd_cache/etcd" "$assets/etcd"
echo "$assets"
