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
network/build-fabric.sh >/dev/null
echo "setup: ready (.venv, Fabric $(grep ^FABRIC_RELEASE network/fabric.pin | cut -d= -f2))" >&2
