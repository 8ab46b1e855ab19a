# Sourced by gen-replaces.sh and kubeadm-mod.sh: the staging modules of a k8s.io/kubernetes release.
#
# k8s.io/kubernetes cannot be required as-is: its go.mod requires every staging module
# (k8s.io/api, k8s.io/apiserver, ...) at v0.0.0 and replaces them with ./staging/src/...,
# and replace directives of a dependency are ignored. So each staging module the release's
# go.mod *requires* is pinned to the matching published v0.<minor>.<patch> tag. (Staging
# modules that are only replaced but not required, e.g. sample-controller, are never needed
# and are not published on the module proxy, so they are left out.)

# staging_pins v1.MINOR.PATCH: sets modfile (the release's go.mod in the module cache), pins (the
# staging modules to pin), gover (the release's go directive) and STAGING_VERSION
staging_pins() {
  STAGING_VERSION="v0.${1#v1.}"
  modfile=$(go mod download -json "k8s.io/kubernetes@$1" | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')
  [[ -f "$modfile" ]] || { echo "cannot download go.mod of k8s.io/kubernetes@$1" >&2; exit 1; }
  local staging required
  mapfile -t staging < <(awk '/=> \.\/staging\/src\//{print $1}' "$modfile" | sort -u)
  mapfile -t required < <(awk '$2=="v0.0.0"{print $1}' "$modfile" | sort -u)
  mapfile -t pins < <(comm -12 <(printf '%s\n' "${staging[@]}") <(printf '%s\n' "${required[@]}"))
  [[ ${#pins[@]} -gt 10 ]] || { echo "found only ${#pins[@]} staging modules in $modfile" >&2; exit 1; }
  gover=$(awk '$1=="go"{print $2; exit}' "$modfile")
}

# the go.mod replace block of the pins
replace_block() {
  local m
  echo "replace ("
  for m in "${pins[@]}"; do printf '\t%s => %s %s\n' "$m" "$m" "$STAGING_VERSION"; done
  echo ")"
}
