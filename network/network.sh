#!/usr/bin/env bash
# fedfabric network: up | down | status | logs [node] | build | deploy | enroll | profile   (see --help)
# A thin wrapper over `python -m fedfabric network`, using the project's virtualenv when present.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${FEDFABRIC_PYTHON:-}"
if [[ -z "$py" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then py="$root/.venv/bin/python"; else py="python3"; fi
fi
export PYTHONPATH="$root/app:$root/chaincode${PYTHONPATH:+:$PYTHONPATH}"
exec "$py" -m fedfabric network "$@"
