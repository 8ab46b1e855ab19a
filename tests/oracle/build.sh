#!/usr/bin/env bash
# Build the differential oracle (upstream k8s.io/apiserver audit policy code) into
# ${AUDITWARDEN_TOOLS:-~/.cache/auditwarden/tools}/bin/auditwarden-oracle.
# Go's build cache makes a rebuild with no change take about a second.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN="${AUDITWARDEN_TOOLS:-$HOME/.cache/auditwarden/tools}/bin"
mkdir -p "$BIN"
export GOFLAGS=-mod=mod CGO_ENABLED=${CGO_ENABLED:-0}
t0=$SECONDS
(cd "$HERE" && go build -trimpath -o "$BIN/auditwarden-oracle" .)
echo "==> auditwarden-oracle: built in $((SECONDS - t0))s ($BIN/auditwarden-oracle)"
