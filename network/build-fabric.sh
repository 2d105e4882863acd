#!/usr/bin/env bash
# Build the pinned Fabric binaries (and Fabric CA's) from the Go module proxy into a cache outside git.
#   network/build-fabric.sh            build if the cache is missing or stale, print the bin dir
#   network/build-fabric.sh --force    rebuild
#   network/build-fabric.sh --go-env   print the Go settings a build would use (proxy only), build nothing
# Fabric is pure Go (CGO_ENABLED=0); Fabric CA needs cgo for its sqlite driver (a C compiler: gcc).
# Cache: ${FEDFABRIC_CACHE:-$HOME/.cache/fedfabric}/fabric/<release>-<module version>/{bin,config}
# Stamp: <cache>/.pin holds "pin=<sha256 of fabric.pin's non-comment lines>" and
# "script=<sha256 of this script>": changing either rebuilds (fedfabric.network.fabricbin.locate
# refuses a cache whose stamp does not match).
# Modules come from the Go module proxy only: the 'direct' (VCS) fallback is removed from GOPROXY,
# nothing may bypass the proxy (GONOPROXY/GOPRIVATE) or the checksum database (GONOSUMDB, GOSUMDB=off).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=/dev/null
source "$here/fabric.pin"
mode=build; force=0
case "${1:-}" in
  "") ;;
  --force) force=1 ;;
  --go-env) mode=go-env ;;
  *) echo "usage: network/build-fabric.sh [--force | --go-env]" >&2; exit 2 ;;
esac

die() { echo "build-fabric: $*" >&2; exit 1; }

cache_root="${FEDFABRIC_CACHE:-$HOME/.cache/fedfabric}"
dest="$cache_root/fabric/${FABRIC_RELEASE}-${FABRIC_MODULE_VERSION}"
stamp="$dest/.pin"
pin_digest="$(grep -v '^#' "$here/fabric.pin" | sha256sum | cut -d' ' -f1)"
script_digest="$(sha256sum < "$here/build-fabric.sh" | cut -d' ' -f1)"
want_stamp="$(printf 'pin=%s\nscript=%s' "$pin_digest" "$script_digest")"

if [[ $mode == build && $force -eq 0 && -f "$stamp" && "$(cat "$stamp")" == "$want_stamp" ]]; then
  echo "$dest/bin"; exit 0
fi

command -v go >/dev/null || die "'go' not found on PATH (Go >= 1.22 needed)"

# GOPROXY without its 'direct' entries (',' and '|' separated lists; 'off' kept: it only forbids).
proxy_only() {
  local entry parts=() out=()
  IFS=',|' read -ra parts <<< "$1"
  for entry in "${parts[@]}"; do
    if [[ -n "$entry" && "$entry" != direct ]]; then out+=("$entry"); fi
  done
  (IFS=','; echo "${out[*]}")
}

go_hygiene() {
  local configured
  configured="$(go env GOPROXY)"
  GOPROXY="$(proxy_only "$configured")"
  [[ -n "$GOPROXY" && "$GOPROXY" != off ]] \
    || die "GOPROXY='$configured' names no module proxy; set GOPROXY=https://proxy.golang.org"
  export GOPROXY GONOPROXY="" GOPRIVATE="" GONOSUMDB="" GOINSECURE="" GOFLAGS=-mod=mod \
         GOTOOLCHAIN=local CGO_ENABLED=0
  # an empty variable falls back to `go env -w` settings: check what go really uses
  local key value
  for key in GONOPROXY GONOSUMDB GOINSECURE; do
    value="$(go env "$key")"
    [[ -z "$value" ]] || die "$key='$value' (go env) would let modules bypass the module proxy or the" \
      "checksum database; remove it: go env -u $key; go env -u GOPRIVATE"
  done
  [[ "$(go env GOSUMDB)" != off ]] || die "GOSUMDB=off: module checksums would not be verified"
}
go_hygiene

if [[ $mode == go-env ]]; then
  for key in GOPROXY GONOPROXY GONOSUMDB GOSUMDB GOINSECURE GOFLAGS GOTOOLCHAIN; do
    echo "$key=$(go env "$key")"
  done
  exit 0
fi

work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
start=$(date +%s)
echo "build-fabric: building Fabric ${FABRIC_RELEASE} (${FABRIC_MODULE}@${FABRIC_MODULE_VERSION}) via GOPROXY=$GOPROXY" >&2
cd "$work"
go mod init fedfabric.local/fabricbuild >/dev/null 2>&1
for r in $FABRIC_GO_REPLACE; do go mod edit -replace "$r"; done
pkgs=()
for c in $FABRIC_COMMANDS; do pkgs+=("${FABRIC_MODULE}/cmd/$c"); done
go get "${pkgs[@]/%/@${FABRIC_MODULE_VERSION}}" > "$work/go-get.log" 2>&1 || { cat "$work/go-get.log" >&2; exit 1; }
rm -rf "$dest.tmp"; mkdir -p "$dest.tmp/bin" "$dest.tmp/config"
ldflags="-X ${FABRIC_MODULE}/common/metadata.Version=${FABRIC_RELEASE} -X ${FABRIC_MODULE}/common/metadata.CommitSHA=${FABRIC_COMMIT:0:12}"
go build -trimpath -ldflags "$ldflags" -o "$dest.tmp/bin/" "${pkgs[@]}" >&2
# sampleconfig ships in the module zip (read-only there): copy core.yaml, orderer.yaml, configtx.yaml
moddir="$(go list -m -f '{{.Dir}}' "${FABRIC_MODULE}")"
cp "$moddir"/sampleconfig/{core.yaml,orderer.yaml,configtx.yaml} "$dest.tmp/config/"
chmod -R u+w "$dest.tmp/config"
"$dest.tmp/bin/peer" version | grep -q "Version: ${FABRIC_RELEASE}" || die "built peer does not report ${FABRIC_RELEASE}"

# Fabric CA in a module of its own, so neither build changes the other's dependency versions.
ca_start=$(date +%s)
echo "build-fabric: building Fabric CA ${FABRIC_CA_RELEASE} (${FABRIC_CA_MODULE}@${FABRIC_CA_MODULE_VERSION}, cgo)" >&2
command -v "${CC:-gcc}" >/dev/null || die "Fabric CA needs a C compiler ('${CC:-gcc}' not found) for its sqlite driver"
mkdir "$work/ca" && cd "$work/ca"
go mod init fedfabric.local/fabriccabuild >/dev/null 2>&1
ca_pkgs=()
for c in $FABRIC_CA_COMMANDS; do ca_pkgs+=("${FABRIC_CA_MODULE}/cmd/$c"); done
go get "${ca_pkgs[@]/%/@${FABRIC_CA_MODULE_VERSION}}" > "$work/ca-go-get.log" 2>&1 || { cat "$work/ca-go-get.log" >&2; exit 1; }
CGO_ENABLED=1 go build -trimpath -ldflags "-X ${FABRIC_CA_MODULE}/lib/metadata.Version=${FABRIC_CA_RELEASE}" \
  -o "$dest.tmp/bin/" "${ca_pkgs[@]}" >&2
"$dest.tmp/bin/fabric-ca-server" version | grep -q "Version: ${FABRIC_CA_RELEASE}" \
  || die "built fabric-ca-server does not report ${FABRIC_CA_RELEASE}"
echo "build-fabric: Fabric CA built in $(( $(date +%s) - ca_start ))s" >&2
echo "$want_stamp" > "$dest.tmp/.pin"
# swap in with the shortest gap: processes running the old binaries keep them open
rm -rf "$dest.old"
if [[ -d "$dest" ]]; then mv "$dest" "$dest.old"; fi
mv "$dest.tmp" "$dest"
rm -rf "$dest.old"
echo "build-fabric: done in $(( $(date +%s) - start ))s -> $dest/bin" >&2
echo "$dest/bin"
