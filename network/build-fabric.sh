#!/usr/bin/env bash
# Build the pinned Fabric binaries (and Fabric CA's) from the Go module proxy into a cache outside git.
#   network/build-fabric.sh            build if the cache is missing or stale, print the bin dir
#   network/build-fabric.sh --force    rebuild
# Fabric is pure Go (CGO_ENABLED=0); Fabric CA needs cgo for its sqlite driver (a C compiler: gcc).
# Cache: ${FEDFABRIC_CACHE:-$HOME/.cache/fedfabric}/fabric/<release>-<module version>/{bin,config}
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=/dev/null
source "$here/fabric.pin"
force=0; [[ "${1:-}" == "--force" ]] && force=1

cache_root="${FEDFABRIC_CACHE:-$HOME/.cache/fedfabric}"
dest="$cache_root/fabric/${FABRIC_RELEASE}-${FABRIC_MODULE_VERSION}"
stamp="$dest/.pin"
pin_digest="$(grep -v '^#' "$here/fabric.pin" | sha256sum | cut -d' ' -f1)"

if [[ $force -eq 0 && -f "$stamp" && "$(cat "$stamp")" == "$pin_digest" ]]; then
  echo "$dest/bin"; exit 0
fi

command -v go >/dev/null || { echo "build-fabric: 'go' not found on PATH (Go >= 1.22 needed)" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
start=$(date +%s)
echo "build-fabric: building Fabric ${FABRIC_RELEASE} (${FABRIC_MODULE}@${FABRIC_MODULE_VERSION})" >&2
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
"$dest.tmp/bin/peer" version | grep -q "Version: ${FABRIC_RELEASE}" || { echo "build-fabric: built peer does not report ${FABRIC_RELEASE}" >&2; exit 1; }

# Fabric CA in a module of its own, so neither build changes the other's dependency versions.
ca_start=$(date +%s)
echo "build-fabric: building Fabric CA ${FABRIC_CA_RELEASE} (${FABRIC_CA_MODULE}@${FABRIC_CA_MODULE_VERSION}, cgo)" >&2
command -v "${CC:-gcc}" >/dev/null || { echo "build-fabric: Fabric CA needs a C compiler ('${CC:-gcc}' not found) for its sqlite driver" >&2; exit 1; }
mkdir "$work/ca" && cd "$work/ca"
go mod init fedfabric.local/fabriccabuild >/dev/null 2>&1
ca_pkgs=()
for c in $FABRIC_CA_COMMANDS; do ca_pkgs+=("${FABRIC_CA_MODULE}/cmd/$c"); done
go get "${ca_pkgs[@]/%/@${FABRIC_CA_MODULE_VERSION}}" > "$work/ca-go-get.log" 2>&1 || { cat "$work/ca-go-get.log" >&2; exit 1; }
CGO_ENABLED=1 go build -trimpath -ldflags "-X ${FABRIC_CA_MODULE}/lib/metadata.Version=${FABRIC_CA_RELEASE}" \
  -o "$dest.tmp/bin/" "${ca_pkgs[@]}" >&2
"$dest.tmp/bin/fabric-ca-server" version | grep -q "Version: ${FABRIC_CA_RELEASE}" || { echo "build-fabric: built fabric-ca-server does not report ${FABRIC_CA_RELEASE}" >&2; exit 1; }
echo "build-fabric: Fabric CA built in $(( $(date +%s) - ca_start ))s" >&2
rm -rf "$dest"; mv "$dest.tmp" "$dest"
echo "$pin_digest" > "$stamp"
echo "build-fabric: done in $(( $(date +%s) - start ))s -> $dest/bin" >&2
echo "$dest/bin"
