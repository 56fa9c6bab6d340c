#!/usr/bin/env bash
# Installs the Debian packages that the node tests, the testbed and the demo use.
# Quick when they are already there; needs root (as on the project's machines).
set -euo pipefail

packages=(haproxy iptables nftables iproute2 arping tcpdump nginx-light curl procps keepalived prometheus mariadb-server mariadb-client
  # make images and the local cluster: the agent's Debian root filesystem,
  # the nodes' runtime, their certificates and the static pause binary.
  mmdebstrap runc openssl util-linux gcc libc6-dev
  # uploads: rsync as daemon and client on every front; lsyncd, the
  # standard inotify+rsync daemon, beside it in make bench-sync.
  rsync lsyncd)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packaged services are not ours to run: the tests start their own, inside
# the testbed's namespaces only (keepalived for make bench-failover, mariadbd for
# the database trial); prometheus is here for promtool.
for s in haproxy nginx keepalived prometheus mariadb rsync lsyncd; do
  systemctl disable --now "$s" >/dev/null 2>&1 || service "$s" stop >/dev/null 2>&1 || true
done
