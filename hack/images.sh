#!/usr/bin/env bash
# Builds webfarm's two images as OCI archives without a daemon (`make images`):
#   the controller: its static binary on an empty base, as user 65532;
#   the agent: its static binary on a Debian bookworm root filesystem made by
#   mmdebstrap from Debian's packages (HAProxy, iptables, nftables, iproute2,
#   tini), tini as PID 1.
# hack/ociimage assembles both. Every timestamp is SOURCE_DATE_EPOCH (0 unless
# set, as ko does), so the same sources and the same Debian packages give the
# same digests. The root filesystem is cached under ~/.cache/webfarm/images by
# its package list; ROOTFS_REFRESH=1 makes it anew (to take Debian's updates).
# Writes $OUT/webfarm-controller.tar and $OUT/webfarm-agent.tar and prints
# each image's name and digest.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
IMG_CONTROLLER=${IMG_CONTROLLER:?the controller image name}
IMG_AGENT=${IMG_AGENT:?the agent image name}
OUT=${OUT:-$root/_output/images}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0}
# haproxy: the proxy the agent runs. iptables, nftables: the DNAT drain chain
# through either backend. iproute2: the operator's `ip` in `kubectl exec`.
# tini: PID 1, which reaps HAProxy's detached master and forwards SIGTERM to
# the agent alone, so that HAProxy serves until the failover IPs are handed off.
# rsync: the daemon and client that keep a farm's upload directories in step.
# mariadb-client-core: the mariadb client of the chart's MariaDB notify hooks.
packages=haproxy,iptables,nftables,iproute2,tini,rsync,mariadb-client-core
# Documentation, manuals and translations are left out but for the licences.
dpkgopts=(--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*')
cache=${XDG_CACHE_HOME:-$HOME/.cache}/webfarm/images

log() { echo "images: $*" >&2; }

# rootfs makes (or reuses) the agent's Debian root filesystem as a tarball and
# prints its path. Debian's own apt sources are the mirror: no registry.
rootfs() {
  local key tar
  key=$(printf '%s\n' "bookworm" "$packages" "${dpkgopts[@]}" "$SOURCE_DATE_EPOCH" | sha256sum | cut -c1-12)
  tar=$cache/rootfs-bookworm-$key.tar
  if [ ! -s "$tar" ] || [ -n "${ROOTFS_REFRESH:-}" ]; then
    mkdir -p "$cache"
    log "making the agent's root filesystem with mmdebstrap (about 2 minutes)"
    mmdebstrap --quiet --variant=essential --format=tar --include="$packages" "${dpkgopts[@]}" \
      bookworm "$tar.tmp" "$(apt_sources)" >&2
    mv "$tar.tmp" "$tar"
  fi
  echo "$tar"
}

apt_sources() {
  local f
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [ -s "$f" ] && { echo "$f"; return; }
  done
  echo "images: no Debian apt sources on this machine" >&2
  return 1
}

gobuild() {
  CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$1" "$2"
}

mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root"
gobuild "$work/ociimage" ./hack/ociimage
gobuild "$work/webfarm-controller" ./cmd/webfarm-controller
gobuild "$work/webfarm-agent" ./cmd/webfarm-agent
base=$(rootfs)

d=$("$work/ociimage" --name "$IMG_CONTROLLER" --out "$OUT/webfarm-controller.tar" \
  --file "$work/webfarm-controller:/webfarm-controller:0755" \
  --entrypoint /webfarm-controller --user 65532:65532)
echo "$IMG_CONTROLLER $d"
d=$("$work/ociimage" --name "$IMG_AGENT" --out "$OUT/webfarm-agent.tar" --rootfs "$base" \
  --file "$work/webfarm-agent:/usr/local/bin/webfarm-agent:0755" \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --entrypoint /usr/bin/tini --entrypoint -- --entrypoint /usr/local/bin/webfarm-agent)
echo "$IMG_AGENT $d"
