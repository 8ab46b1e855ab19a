#!/usr/bin/env bash
# Build the tools the e2e suite needs into ${AUDITWARDEN_TOOLS:-~/.cache/auditwarden/tools}/bin:
#   kube-apiserver  from k8s.io/kubernetes (pinned in harness/go.mod)
#   etcd-runner     single-member embedded etcd (harness/cmd/etcd-runner)
#   flag-oracle     kube-apiserver's real flag set, parsing argvs without a server (harness/cmd/flag-oracle)
#   static-pod-oracle  the kubelet's decoding and validation of a static Pod (harness/cmd/static-pod-oracle)
#   helm            helm.sh/helm/v4
#   kube-bench      github.com/aquasecurity/kube-bench (+ its cfg/ copied next to it)
#   kubeadm         kubeadm from the same k8s.io/kubernetes pins (the oracle of kubeadm-config)
#   kubeadm-old     kubeadm of older releases ($KUBEADM_OLD_VERSIONS) as kubeadm-vX.Y.Z, each in a
#                   module of its own whose staging pins harness/kubeadm-mod.sh writes
#   node            the node of the `node` tests: kubelet, kube-controller-manager and kube-scheduler
#                   from the same k8s.io/kubernetes pins; containerd v2 (+ runc shim, ctr)
#                   (not built by default: tests/e2e/node/setup.sh asks for it)
#
# Idempotent: a build is skipped when its binary exists and its stamp file records the same
# inputs (pinned version, go version, harness go.mod/go.sum/source hash). Needs only Go >= 1.26
# and network access to the Go module proxy.
#
# usage: tests/e2e/build.sh [--force] [kube-apiserver|etcd-runner|flag-oracle|static-pod-oracle|helm|kube-bench|kubeadm|kubeadm-old|kube-node|containerd ...]
set -euo pipefail

K8S_VERSION=v1.37.2            # keep in sync with harness/go.mod (harness/gen-replaces.sh)
HELM_VERSION=v4.2.4
KUBE_BENCH_VERSION=v0.15.6
CONTAINERD_VERSION=v2.4.2
# older kubeadm releases whose version rules the kubeadm differential test proves
KUBEADM_OLD_VERSIONS="v1.36.3 v1.34.0"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HARNESS="$HERE/harness"
TOOLS=${AUDITWARDEN_TOOLS:-$HOME/.cache/auditwarden/tools}
BIN="$TOOLS/bin"
STAMPS="$TOOLS/stamps"
mkdir -p "$BIN" "$STAMPS"

export GOFLAGS=-mod=mod
export CGO_ENABLED=${CGO_ENABLED:-0}

force=0
wanted=()
for a in "$@"; do
  case "$a" in
    --force) force=1 ;;
    kube-apiserver|etcd-runner|flag-oracle|static-pod-oracle|helm|kube-bench|kubeadm|kubeadm-old|kube-node|containerd) wanted+=("$a") ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done
[[ ${#wanted[@]} -gt 0 ]] || wanted=(kube-apiserver etcd-runner flag-oracle static-pod-oracle helm kube-bench kubeadm kubeadm-old)

command -v go >/dev/null || { echo "build.sh: Go is required (https://go.dev/dl/)" >&2; exit 1; }
GO_VERSION=$(go env GOVERSION)

hash_files() { cat "$@" | sha256sum | cut -c1-16; }
now() { date +%s; }
fmt_secs() { printf '%dm%02ds' $(( $1 / 60 )) $(( $1 % 60 )); }

# step NAME STAMP_CONTENT FUNCTION
step() {
  local name=$1 stamp=$2 fn=$3 stampfile="$STAMPS/$1.stamp" t0 dt
  if [[ $force -eq 0 && -x "$BIN/$name" && -f "$stampfile" && "$(cat "$stampfile")" == "$stamp" ]]; then
    echo "==> $name: up to date ($BIN/$name)"
    return 0
  fi
  echo "==> $name: building ..."
  t0=$(now)
  rm -f "$stampfile"
  "$fn"
  printf '%s\n' "$stamp" > "$stampfile"
  dt=$(( $(now) - t0 ))
  echo "==> $name: built in $(fmt_secs $dt) ($BIN/$name)"
  timings+=("$name $(fmt_secs $dt)")
}

k8s_ldflags() {
  local version=${1:-$K8S_VERSION}
  local minor=${version#v1.}; minor=${minor%%.*}
  echo "-s -w \
      -X k8s.io/component-base/version.gitVersion=$version \
      -X k8s.io/component-base/version.gitMajor=1 \
      -X k8s.io/component-base/version.gitMinor=$minor \
      -X k8s.io/component-base/version.gitTreeState=clean \
      -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
}

build_kube_apiserver() {
  (cd "$HARNESS" && go build -trimpath -o "$BIN/kube-apiserver.tmp" -ldflags "$(k8s_ldflags)" \
    k8s.io/kubernetes/cmd/kube-apiserver)
  mv -f "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
}

build_flag_oracle() {
  (cd "$HARNESS" && go build -trimpath -ldflags "-s -w" -o "$BIN/flag-oracle.tmp" ./cmd/flag-oracle)
  mv -f "$BIN/flag-oracle.tmp" "$BIN/flag-oracle"
}

# The node's Kubernetes binaries come from the harness's pins, built in a scratch copy of the
# module: they need a few more modules of k8s.io/kubernetes's graph than kube-apiserver does
# (-mod=mod adds them there), and the committed go.mod, which keys kube-apiserver's stamp in the
# shared tools cache, stays as gen-replaces.sh wrote it.
build_kube_node() {
  local mod="$TOOLS/node-harness" out="$TOOLS/node-bin.tmp" b
  rm -rf "$mod" "$out"
  mkdir -p "$mod" "$out"
  cp "$HARNESS/go.mod" "$HARNESS/go.sum" "$mod/"
  # a module needs a package of its own to build another module's commands from
  printf 'package harness\n' > "$mod/doc.go"
  (cd "$mod" && go build -trimpath -o "$out/" -ldflags "$(k8s_ldflags)" \
    k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler)
  for b in kubelet kube-controller-manager kube-scheduler; do mv -f "$out/$b" "$BIN/$b"; done
  rm -rf "$out"
  ln -sf kubelet "$BIN/kube-node"   # the step's marker binary
}

# containerd 2.x with no cgo: the snapshotters that need C libraries are left out by tag
# (overlayfs and native stay); the runc shim and ctr (to import images) come with it.
build_containerd() {
  local v=${CONTAINERD_VERSION#v} b
  for b in containerd containerd-shim-runc-v2 ctr; do
    GOBIN="$TOOLS/containerd-bin.tmp" go install -trimpath -tags "no_btrfs no_devmapper no_zfs" \
      -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$v -X github.com/containerd/containerd/v2/version.Package=github.com/containerd/containerd/v2" \
      "github.com/containerd/containerd/v2/cmd/$b@$CONTAINERD_VERSION"
  done
  for b in containerd containerd-shim-runc-v2 ctr; do mv -f "$TOOLS/containerd-bin.tmp/$b" "$BIN/$b"; done
  rm -rf "$TOOLS/containerd-bin.tmp"
}

# kubeadm from the harness's pins, in a scratch copy of the module (like the node's binaries: it
# needs modules of k8s.io/kubernetes's graph that kube-apiserver does not). kubeadm reads its own
# version (ldflags) to decide which control-plane versions it deploys.
build_kubeadm() {
  local mod="$TOOLS/kubeadm-harness"
  rm -rf "$mod"
  mkdir -p "$mod"
  cp "$HARNESS/go.mod" "$HARNESS/go.sum" "$mod/"
  printf 'package harness\n' > "$mod/doc.go"
  (cd "$mod" && go build -trimpath -o "$BIN/kubeadm.tmp" -ldflags "$(k8s_ldflags)" k8s.io/kubernetes/cmd/kubeadm)
  mv -f "$BIN/kubeadm.tmp" "$BIN/kubeadm"
  rm -rf "$mod"
}

# Older kubeadm releases: a module per release, pinned by harness/kubeadm-mod.sh.
build_kubeadm_old() {
  local v mod
  for v in $KUBEADM_OLD_VERSIONS; do
    mod="$TOOLS/kubeadm-$v-harness"
    rm -rf "$mod"
    bash "$HARNESS/kubeadm-mod.sh" "$v" "$mod"
    (cd "$mod" && go build -trimpath -o "$BIN/kubeadm-$v.tmp" -ldflags "$(k8s_ldflags "$v")" k8s.io/kubernetes/cmd/kubeadm)
    mv -f "$BIN/kubeadm-$v.tmp" "$BIN/kubeadm-$v"
    rm -rf "$mod"
  done
  ln -sf "kubeadm-${KUBEADM_OLD_VERSIONS%% *}" "$BIN/kubeadm-old"   # the step's marker binary
}

build_static_pod_oracle() {
  (cd "$HARNESS" && go build -trimpath -ldflags "-s -w" -o "$BIN/static-pod-oracle.tmp" ./cmd/static-pod-oracle)
  mv -f "$BIN/static-pod-oracle.tmp" "$BIN/static-pod-oracle"
}

build_etcd_runner() {
  (cd "$HARNESS" && go build -trimpath -ldflags "-s -w" -o "$BIN/etcd-runner.tmp" ./cmd/etcd-runner)
  mv -f "$BIN/etcd-runner.tmp" "$BIN/etcd-runner"
}

build_helm() {
  # helm hard-codes only "v4.MINOR"; its release Makefile injects the full version like this.
  GOBIN="$BIN" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
}

build_kube_bench() {
  local ldflags="-s -w -X github.com/aquasecurity/kube-bench/cmd.KubeBenchVersion=$KUBE_BENCH_VERSION"
  local moddir src
  if ! GOBIN="$BIN" go install -trimpath -ldflags "$ldflags" "github.com/aquasecurity/kube-bench@$KUBE_BENCH_VERSION"; then
    # `go install m@v` also reads m's @v/list (deprecation check); some proxies/mirrors refuse
    # that. Building inside the downloaded module is equivalent: same go.mod, go.sum, replaces.
    echo "    go install failed; building from the module download instead"
    moddir=$(go mod download -json "github.com/aquasecurity/kube-bench@$KUBE_BENCH_VERSION" \
      | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')
    [[ -d "$moddir" ]] || { echo "cannot download github.com/aquasecurity/kube-bench@$KUBE_BENCH_VERSION" >&2; exit 1; }
    (cd "$moddir" && GOFLAGS=-mod=readonly go build -trimpath -ldflags "$ldflags" -o "$BIN/kube-bench.tmp" .)
    mv -f "$BIN/kube-bench.tmp" "$BIN/kube-bench"
  fi
  # kube-bench needs its cfg/ directory (benchmarks); it ships in the module download.
  src="$(go env GOMODCACHE)/github.com/aquasecurity/kube-bench@$KUBE_BENCH_VERSION/cfg"
  [[ -d "$src" ]] || { echo "kube-bench cfg not found at $src" >&2; exit 1; }
  rm -rf "$TOOLS/kube-bench"
  mkdir -p "$TOOLS/kube-bench"
  cp -R "$src" "$TOOLS/kube-bench/cfg"
  chmod -R u+w "$TOOLS/kube-bench"
  echo "    kube-bench cfg: $src (copied to $TOOLS/kube-bench/cfg)"
}

harness_hash=$(hash_files "$HARNESS/go.mod" "$HARNESS/go.sum")
runner_hash=$(hash_files "$HARNESS/go.mod" "$HARNESS/go.sum" "$HARNESS"/cmd/etcd-runner/*.go)
flag_oracle_hash=$(hash_files "$HARNESS/go.mod" "$HARNESS/go.sum" "$HARNESS"/cmd/flag-oracle/*.go)
static_pod_oracle_hash=$(hash_files "$HARNESS/go.mod" "$HARNESS/go.sum" "$HARNESS"/cmd/static-pod-oracle/*.go)
kubeadm_old_hash=$(hash_files "$HARNESS/kubeadm-mod.sh")

timings=()
total0=$(now)
for w in "${wanted[@]}"; do
  case "$w" in
    kube-apiserver) step kube-apiserver "k8s=$K8S_VERSION go=$GO_VERSION mod=$harness_hash" build_kube_apiserver ;;
    etcd-runner)    step etcd-runner "go=$GO_VERSION src=$runner_hash" build_etcd_runner ;;
    flag-oracle)    step flag-oracle "go=$GO_VERSION src=$flag_oracle_hash" build_flag_oracle ;;
    helm)           step helm "helm=$HELM_VERSION go=$GO_VERSION" build_helm ;;
    kube-bench)     step kube-bench "kube-bench=$KUBE_BENCH_VERSION go=$GO_VERSION" build_kube_bench ;;
    static-pod-oracle) step static-pod-oracle "go=$GO_VERSION src=$static_pod_oracle_hash" build_static_pod_oracle ;;
    kubeadm)        step kubeadm "k8s=$K8S_VERSION go=$GO_VERSION mod=$harness_hash" build_kubeadm ;;
    kubeadm-old)    step kubeadm-old "k8s=$KUBEADM_OLD_VERSIONS go=$GO_VERSION src=$kubeadm_old_hash" build_kubeadm_old ;;
    kube-node)      step kube-node "k8s=$K8S_VERSION go=$GO_VERSION mod=$harness_hash" build_kube_node ;;
    containerd)     step containerd "containerd=$CONTAINERD_VERSION go=$GO_VERSION" build_containerd ;;
  esac
done
echo "==> done in $(fmt_secs $(( $(now) - total0 ))) ; tools in $BIN"
for t in "${timings[@]}"; do echo "    $t"; done
