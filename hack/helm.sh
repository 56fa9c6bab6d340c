#!/usr/bin/env bash
# Builds helm from the Go module proxy (no package ships it here) for the chart
# tests and for `helm install` from a checkout.
#
# The binary is cached by version outside the checkout (a fresh clone reuses it)
# and linked into bin/helm. Quick and idempotent once cached. Prints the path of
# the binary.
set -euo pipefail

HELM_VERSION=${HELM_VERSION:-v3.22.0}
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/webfarm/helm/${HELM_VERSION}

log() { echo "helm: $*" >&2; }

# k8s_minor prints the minor version of the Kubernetes modules helm is built
# with (k8s.io/client-go v0.37.0 -> 37), as helm's own Makefile derives it.
k8s_minor() {
  local mod
  mod=$(cd "$cache" && go mod download -json "helm.sh/helm/v3@${HELM_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  awk '$1 == "k8s.io/client-go" {split($2, v, "."); print v[2]; exit}' "$mod"
}

if [ ! -x "$cache/helm" ]; then
  log "building helm ${HELM_VERSION} from the module proxy (a few minutes on first use)"
  mkdir -p "$cache"
  minor=$(k8s_minor)
  # The same -X flags as helm's Makefile: without them `helm version` says
  # v3.x-dev, and `helm template` and `helm lint` assume Kubernetes v1.20,
  # which a chart's kubeVersion constraint refuses.
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags="$ldflags -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=${minor}"
  done
  GOBIN="$cache" CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" \
    "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
fi

mkdir -p "$root/bin"
ln -sfn "$cache/helm" "$root/bin/helm"
echo "$root/bin/helm"
