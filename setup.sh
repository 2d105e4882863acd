#!/usr/bin/env bash
# Prepare this checkout on a fresh machine: Python venv with every dependency, pinned Fabric binaries.
# Idempotent and quick when everything is already there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
stamp=".venv/.fedfabric-deps"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "setup: installing Python dependencies into .venv (torch is large the first time)" >&2
  .venv/bin/pip install -q --upgrade pip >&2
  .venv/bin/pip install -q -e '.[test]' >&2
  echo "$want" > "$stamp"
fi
# hfc (fabric-sdk-py), for Fabric CA enrollment (fedfabric.network.enroll). Its metadata pins pysha3,
# which does not build on Python 3.11, and old requests/rx versions nothing here uses: it is installed
# without its declared dependencies; what hfc.fabric_ca imports (requests, six, hkdf, pycryptodomex,
# cryptography) is in pyproject.toml's dependencies. hfc.fabric is never imported (see the design).
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
