#!/usr/bin/env bash
# Measures what the builds of `make test` and `make test-cluster` cost a fresh
# machine, in CPU-seconds, which unlike wall time do not depend on the load of
# a shared machine. Every step runs from a copy of this checkout with an empty
# GOCACHE and an empty build cache (XDG_CACHE_HOME) of its own, in the order a
# fresh `make test` meets them, so each step reuses what the steps before it
# compiled, as it would there. Module downloads are not counted: the module
# cache is the machine's (GOMODCACHE), since fetching is not computing.
#
#   hack/build-cost.sh [STEP...]   default: every step, in order
#
# Steps: control-plane (kube-apiserver, kubectl, etcd: what envtest needs),
# nodes (kube-controller-manager, kube-scheduler, kubelet, kube-proxy, built
# with the two above in one `go build`), node-stack (containerd, ctr, its shim,
# the CNI plugins), helm, images (both images: mmdebstrap's root filesystem and
# three Go builds). runc is Debian's and costs no build.
#
# Prints one line a step: user, system and total CPU-seconds, wall seconds and
# the 1-minute load average at its start and end; the sum at the end. Run it
# under `nice -n 19` on a shared machine. Leaves nothing behind.
#
# Every compile and link is also counted on its own (go's -toolexec), so that
# a step cut short (a build that outlives its time on a loaded machine, ended
# by a signal) still tells what it had cost and how many packages it had
# compiled: its line says "(cut)" and counts those only.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(control-plane nodes node-stack helm images)

work=$(mktemp -d /var/tmp/webfarm-build-cost.XXXXXX)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/cache" "$work/tmp"
tar -C "$root" --exclude=./bin --exclude=./_output --exclude=./.git -c . | tar -C "$work/src" -x
export GOCACHE=$work/gocache XDG_CACHE_HOME=$work/cache TMPDIR=$work/tmp
# acct runs each Go tool under time(1): "step tool package user sys" a line.
cat >"$work/acct" <<'SH'
#!/bin/sh
pkg=- prev=
for a in "$@"; do [ "$prev" = -p ] && pkg=$a; prev=$a; done
exec /usr/bin/time -a -o "$BUILD_COST_ACCT" -f "$BUILD_COST_STEP ${1##*/} $pkg %U %S" "$@"
SH
chmod +x "$work/acct"
export BUILD_COST_ACCT=$work/acct.log
export GOFLAGS="${GOFLAGS:-} -toolexec=$work/acct"

load() { cut -d' ' -f1 /proc/loadavg; }

# run_step runs one step under /usr/bin/time, whose figures include every
# process the step waited for (the compiler and linker under go build).
run_step() {
  local step=$1 cmd
  case $step in
  control-plane) cmd=(hack/control-plane.sh) ;;
  nodes) cmd=(env CONTROL_PLANE_NODES=1 hack/control-plane.sh) ;;
  node-stack) cmd=(hack/node-stack.sh) ;;
  helm) cmd=(hack/helm.sh) ;;
  images) cmd=(env IMG_CONTROLLER=webfarm.local/controller:cost IMG_AGENT=webfarm.local/agent:cost OUT="$work/images" hack/images.sh) ;;
  *) echo "build-cost: no step $step" >&2; return 2 ;;
  esac
  local l0 l1
  l0=$(load)
  export BUILD_COST_STEP=$step
  current=$step
  (cd "$work/src" && /usr/bin/time -f '%U %S %e' -o "$work/time.$step" "${cmd[@]}" >"$work/log.$step" 2>&1) || {
    echo "build-cost: step $step failed:" >&2
    tail -20 "$work/log.$step" >&2
    return 1
  }
  l1=$(load)
  read -r user sys wall <"$work/time.$step"
  awk -v s="$step" -v u="$user" -v y="$sys" -v w="$wall" -v a="$l0" -v b="$l1" \
    'BEGIN { printf "%-14s %9.0f %8.0f %9.0f %8.0f   %s -> %s\n", s, u, y, u + y, w, a, b }'
  echo "$user $sys $wall" >>"$work/sum"
}

# cut_short prints what the step under way had cost when a signal ended it: its
# compiles and links that had finished, and how many packages they were.
cut_short() {
  trap - TERM INT
  [ -n "${current:-}" ] && [ -s "$work/acct.log" ] &&
    awk -v s="$current" '$1 == s { u += $4; y += $5; if ($2 == "compile" && $3 != "-") n++ }
      END { printf "%-14s %9.0f %8.0f %9.0f   (cut: %d packages compiled)\n", s, u, y, u + y, n }' "$work/acct.log"
  exit 143
}
trap cut_short TERM INT

printf '%-14s %9s %8s %9s %8s   %s\n' step user-s sys-s cpu-s wall-s load
for s in "${steps[@]}"; do run_step "$s"; done
current=
awk '{ u += $1; y += $2; w += $3 } END { printf "%-14s %9.0f %8.0f %9.0f %8.0f\n", "total", u, y, u + y, w }' "$work/sum"
