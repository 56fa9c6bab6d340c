#!/usr/bin/env bash
# Runs the narrated demo of the whole farm on this machine (root needed):
# builds webfarm-testbed, then `webfarm-testbed demo`. KEEP=1 leaves the
# testbed running after the demo until Ctrl-C. Exits non-zero on failure.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ "$(id -u)" -eq 0 ] || { echo "demo: the testbed creates network namespaces; run as root" >&2; exit 1; }

hack/install-packages.sh
KUBEBUILDER_ASSETS=$(hack/control-plane.sh)
export KUBEBUILDER_ASSETS

bin=$root/bin
mkdir -p "$bin"
go build -o "$bin/webfarm-testbed" ./cmd/webfarm-testbed
go build -o "$bin/webfarm-controller" ./cmd/webfarm-controller
go build -o "$bin/webfarm-agent" ./cmd/webfarm-agent

args=(demo --bin-dir "$bin")
[ "${KEEP:-}" = "1" ] && args+=(--keep)
exec "$bin/webfarm-testbed" "${args[@]}"
