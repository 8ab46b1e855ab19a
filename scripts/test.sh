#!/usr/bin/env bash
# The project's test command — the README's "run the tests" step; .ci/run calls exactly this.
#
# It installs everything it needs on a fresh machine (a virtualenv with the package and its
# test extras; Go-built tools: the upstream-code oracle, kube-apiserver + etcd, helm,
# kube-bench; for the `node` tests, as root: Debian's runc, CNI plugins, mmdebstrap and buildah,
# kubelet + kube-controller-manager + kube-scheduler, containerd, and the project's image built
# from its Dockerfile), then runs the static checks and the whole test suite.  Go builds are cached
# in $AUDITWARDEN_TOOLS (default ~/.cache/auditwarden/tools) and Go's own caches, so a second
# run on the same machine rebuilds nothing.
#
#   scripts/test.sh                 everything (what CI runs)
#   scripts/test.sh -m 'not e2e'    the fast inner loop (arguments go to pytest)
set -euo pipefail
cd "$(dirname "$0")/.."
export AUDITWARDEN_TOOLS="${AUDITWARDEN_TOOLS:-$HOME/.cache/auditwarden/tools}"
export GOFLAGS="${GOFLAGS:--mod=mod}"
mkdir -p "$AUDITWARDEN_TOOLS/bin"

step() { printf '\n==> %s\n' "$*"; }
timed() { local t0=$SECONDS; "$@"; printf '    (%ss)\n' $((SECONDS - t0)); }

step "Python environment (.venv)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
timed .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
export PATH="$PWD/.venv/bin:$AUDITWARDEN_TOOLS/bin:$PATH"

step "Go-built test tools"
for build in tests/oracle/build.sh tests/e2e/build.sh; do
  if [ -f "$build" ]; then
    timed bash "$build"
  fi
done

step "The node of the node tests: packages, kubelet & co, containerd, images"
if [[ " $* " == *"not e2e"* || " $* " == *"not node"* ]]; then
  echo "    skipped: the selection runs no node test"
elif [ "$(id -u)" = 0 ]; then
  timed bash tests/e2e/node/build.sh
else
  echo "    not root: the node tests will fail (AUDITWARDEN_ALLOW_MISSING_TOOLS=1 skips them)"
fi

step "Static checks: ruff, mypy --strict, import-linter"
ruff check .
mypy
lint-imports

step "pytest"
exec python -m pytest "$@"
