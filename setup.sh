#!/usr/bin/env bash
# Prepare this checkout on a fresh machine: Python venv with every dependency, pinned Fabric binaries.
# Idempotent and quick when everything is already there.
#
#   ./setup.sh          venv, dependencies, test tools, flwr and what hfc's Client imports ([test,flower,hfc]),
#                       hfc itself (--no-deps), Fabric
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
# flower, hfc: the Flower-client and hfc Client tests run with the README's test command (and in CI)
extras="test,flower,hfc"
for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup: unknown option '$arg' (options: --help)" >&2; exit 2 ;;
  esac
done
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
# The stamp holds the pyproject.toml digest and the extras installed with it.
stamp=".venv/.fedfabric-deps"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [[ "$have" != "$want $extras" ]]; then
  echo "setup: installing Python dependencies ([$extras]) into .venv (torch is large the first time)" >&2
  .venv/bin/pip install -q --upgrade pip >&2
  .venv/bin/pip install -q -e ".[$extras]" >&2
  echo "$want $extras" > "$stamp"
fi
# hfc (fabric-sdk-py), for Fabric CA enrollment (fedfabric.network.enroll). Its metadata pins pysha3,
# which does not build on Python 3.11, and old requests/rx versions nothing here uses: it is installed
# without its declared dependencies; what hfc.fabric_ca imports (requests, six, hkdf, pycryptodomex,
# cryptography) is in pyproject.toml's dependencies; what hfc.fabric (its Client) needs besides is the
# [hfc] extra. fedfabric itself never imports hfc.fabric: it cannot share a process with
# fabric_protos (see fedfabric/network/hfc_client.py).
hfc_stamp=".venv/.fedfabric-hfc"
hfc_want="fabric-sdk-py==1.0.0"
if [[ ! -f "$hfc_stamp" || "$(cat "$hfc_stamp")" != "$hfc_want" ]]; then
  echo "setup: installing $hfc_want into .venv (--no-deps)" >&2
  .venv/bin/pip install -q --no-deps "$hfc_want" >&2
  echo "$hfc_want" > "$hfc_stamp"
fi
network/build-fabric.sh >/dev/null
echo "setup: ready (.venv, Fabric $(grep ^FABRIC_RELEASE= network/fabric.pin | cut -d= -f2)," \
     "Fabric CA $(grep ^FABRIC_CA_RELEASE= network/fabric.pin | cut -d= -f2))" >&2
