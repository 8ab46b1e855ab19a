#!/usr/bin/env bash
# Build the differential oracles into ${AUDITWARDEN_TOOLS:-~/.cache/auditwarden/tools}/bin:
#   auditwarden-oracle       upstream k8s.io/apiserver audit policy code (this directory's module)
#   openshift-audit-oracle   OpenShift's library-go GetAuditPolicy (openshift/, a module of its own:
#                            its pins stay out of the other oracle's module graph)
# Go's build cache makes a rebuild with no change take about a second.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN="${AUDITWARDEN_TOOLS:-$HOME/.cache/auditwarden/tools}/bin"
mkdir -p "$BIN"
export GOFLAGS=-mod=mod CGO_ENABLED=${CGO_ENABLED:-0}
t0=$SECONDS
(cd "$HERE" && go build -trimpath -o "$BIN/auditwarden-oracle" .)
echo "==> auditwarden-oracle: built in $((SECONDS - t0))s ($BIN/auditwarden-oracle)"
t0=$SECONDS
(cd "$HERE/openshift" && go build -trimpath -o "$BIN/openshift-audit-oracle" .)
echo "==> openshift-audit-oracle: built in $((SECONDS - t0))s ($BIN/openshift-audit-oracle)"
