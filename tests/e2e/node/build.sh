#!/usr/bin/env bash
# Everything the `node` tests need beyond tests/e2e/build.sh, on a fresh Debian machine:
#
#   packages   Debian's runc, containernetworking-plugins, mmdebstrap, buildah, iptables,
#              iproute2, gcc (installed with apt-get when missing)
#   binaries   kubelet, kube-controller-manager, kube-scheduler, kube-proxy, containerd 2.x + shim + ctr
#              (tests/e2e/build.sh kube-node kube-proxy containerd)
#   pause      the sandbox image, pause.c of the pinned k8s.io/kubernetes compiled with gcc -static
#   base       Debian bookworm with python3 (3.11), made by mmdebstrap, as a local image
#   image      the project's Dockerfile built on that base by buildah (--isolation=chroot)
#
# Images are built in a buildah store of their own and exported as docker-archive tarballs to
# $AUDITWARDEN_TOOLS/images/{pause,auditwarden}.tar, which the node fixture imports into the
# node's containerd (`ctr -n k8s.io images import`).  Each step is skipped when its output
# exists and its stamp records the same inputs (versions, script, sources hash).
#
# usage: tests/e2e/node/build.sh [--force] [packages|binaries|pause|base|image ...]
set -euo pipefail

K8S_VERSION=v1.37.2           # keep in sync with tests/e2e/build.sh
SUITE=bookworm                # Debian 12: python3 is 3.11, like python:3.11-slim
BASE_PACKAGES=python3,python3-venv,python3-pip,python-is-python3,ca-certificates
MIRROR=${AUDITWARDEN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
IMAGE_REF=localhost/auditwarden:e2e
BASE_REF=localhost/auditwarden-base:$SUITE
PAUSE_REF=localhost/pause:auditwarden-e2e
STANDIN_REF=localhost/kube-apiserver-standin:e2e
APT_PACKAGES=(runc containernetworking-plugins mmdebstrap buildah iptables iproute2 gcc libc6-dev)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
TOOLS=${AUDITWARDEN_TOOLS:-$HOME/.cache/auditwarden/tools}
IMAGES="$TOOLS/images"
STAMPS="$TOOLS/stamps"
STORE="$IMAGES/store"
mkdir -p "$IMAGES" "$STAMPS"
export GOFLAGS=-mod=mod

force=0
wanted=()
for a in "$@"; do
  case "$a" in
    --force) force=1 ;;
    packages|binaries|pause|base|image) wanted+=("$a") ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done
[[ ${#wanted[@]} -gt 0 ]] || wanted=(packages binaries pause base image)

now() { date +%s; }
fmt_secs() { printf '%dm%02ds' $(( $1 / 60 )) $(( $1 % 60 )); }
# bump a step's revision when the way it builds changes (its stamp records it)
PAUSE_REV=1
BASE_REV=1
IMAGE_REV=1
# a buildah store of the tests' own: the host's /var/lib/containers is never touched, and vfs
# leaves no mount behind
bh() { buildah --root "$STORE/root" --runroot "$STORE/run" --storage-driver vfs "$@"; }

# step NAME OUTPUT STAMP_CONTENT FUNCTION
step() {
  local name=$1 out=$2 stamp=$3 fn=$4 stampfile="$STAMPS/node-$1.stamp" t0 dt
  if [[ $force -eq 0 && -e "$out" && -f "$stampfile" && "$(cat "$stampfile")" == "$stamp" ]]; then
    echo "==> $name: up to date ($out)"
    return 0
  fi
  echo "==> $name: building ..."
  t0=$(now)
  rm -f "$stampfile"
  "$fn"
  printf '%s\n' "$stamp" > "$stampfile"
  dt=$(( $(now) - t0 ))
  echo "==> $name: built in $(fmt_secs $dt) ($out)"
  timings+=("$name $(fmt_secs $dt)")
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

do_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
  if [[ ${#missing[@]} -eq 0 ]]; then echo "==> packages: installed"; return 0; fi
  echo "==> packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" \
    || { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
}

build_pause() {
  local moddir src work ctr
  moddir=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')
  src="$moddir/build/pause/linux/pause.c"
  [[ -f "$src" ]] || { echo "pause.c not found at $src" >&2; exit 1; }
  work=$(mktemp -d)
  gcc -Os -Wall -Werror -static -DVERSION="$K8S_VERSION-auditwarden-e2e" -o "$work/pause" "$src"
  strip "$work/pause"
  ctr=$(bh from scratch)
  bh copy "$ctr" "$work/pause" /pause
  bh config --entrypoint '["/pause"]' --user 65535:65535 "$ctr"
  bh commit --rm "$ctr" "$PAUSE_REF" >/dev/null
  rm -f "$IMAGES/pause.tar.tmp"
  bh push "$PAUSE_REF" "docker-archive:$IMAGES/pause.tar.tmp:$PAUSE_REF"
  # the tests' static kube-apiserver pod runs this stand-in: pause under the name kube-apiserver
  # (it ignores its arguments), so the kubelet has a container to run while the mirror Pod is judged
  ctr=$(bh from scratch)
  bh copy "$ctr" "$work/pause" /usr/local/bin/kube-apiserver
  bh config --entrypoint '["/usr/local/bin/kube-apiserver"]' --user 65535:65535 "$ctr"
  bh commit --rm "$ctr" "$STANDIN_REF" >/dev/null
  rm -f "$IMAGES/standin.tar.tmp"
  bh push "$STANDIN_REF" "docker-archive:$IMAGES/standin.tar.tmp:$STANDIN_REF"
  mv -f "$IMAGES/standin.tar.tmp" "$IMAGES/standin.tar"
  mv -f "$IMAGES/pause.tar.tmp" "$IMAGES/pause.tar"
  rm -rf "$work"
}

build_base() {
  local work ctr
  work=$(mktemp -d)
  mmdebstrap --variant=minbase --include="$BASE_PACKAGES" --aptopt='Acquire::Retries "3"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    "$SUITE" "$work/rootfs.tar" "$MIRROR"
  ctr=$(bh from scratch)
  bh add "$ctr" "$work/rootfs.tar" /
  bh config --cmd '["python3"]' --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  bh commit --rm "$ctr" "$BASE_REF" >/dev/null
  printf '%s\n' "$BASE_REF" > "$IMAGES/base.ref"
  rm -rf "$work"
}

build_image() {
  local trust=()
  # pip in the build stage fetches from PyPI: it trusts what the host trusts (a TLS-inspecting
  # proxy's CA, for one); mounted for the RUN steps only, it is not part of the image
  [[ -f /etc/ssl/certs/ca-certificates.crt ]] \
    && trust=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
  rm -f "$IMAGES/auditwarden.tar.tmp"
  bh bud --isolation=chroot --pull=never --layers=false "${trust[@]}" \
    --build-arg "PYTHON_IMAGE=$BASE_REF" -t "$IMAGE_REF" -f "$REPO/Dockerfile" "$REPO"
  bh push "$IMAGE_REF" "docker-archive:$IMAGES/auditwarden.tar.tmp:$IMAGE_REF"
  mv -f "$IMAGES/auditwarden.tar.tmp" "$IMAGES/auditwarden.tar"
  bh images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep -F "$IMAGE_REF" > "$IMAGES/auditwarden.size" || true
  echo "    image $(cat "$IMAGES/auditwarden.size"), archive $(du -h "$IMAGES/auditwarden.tar" | cut -f1)"
  bh rmi --prune >/dev/null 2>&1 || true
}

# the image's inputs: what the Dockerfile copies (the .dockerignore'd context) and the Dockerfile
src_hash() {
  (cd "$REPO" && find Dockerfile .dockerignore pyproject.toml README.md webhook -type f \
     ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

timings=()
total0=$(now)
for w in "${wanted[@]}"; do
  case "$w" in
    packages) do_packages ;;
    binaries) bash "$HERE/../build.sh" kube-node kube-proxy containerd ;;
    pause) step pause "$IMAGES/pause.tar" "k8s=$K8S_VERSION rev=$PAUSE_REV" build_pause ;;
    base)  step base "$IMAGES/base.ref" "suite=$SUITE pkgs=$BASE_PACKAGES rev=$BASE_REV" build_base ;;
    image) step image "$IMAGES/auditwarden.tar" \
             "base=$(cat "$STAMPS/node-base.stamp" 2>/dev/null | sha256sum | cut -c1-16) src=$(src_hash) rev=$IMAGE_REV" build_image ;;
  esac
done
echo "==> node build done in $(fmt_secs $(( $(now) - total0 )))"
for t in "${timings[@]}"; do echo "    $t"; done
