"""Chaincode-as-a-service entry point: ``python -m fedfabric_cc`` (CHAINCODE_* env vars).

``FEDFABRIC_MAX_CLOCK_SKEW_S`` (from consortium.yaml's ``chaincode.max_clock_skew_s``) bounds how far
a transaction's timestamp may be from this server's clock.
"""
from __future__ import annotations

import logging
import os

from fabshim.contract import Chaincode
from fabshim.server import run_from_env

from .clock import DEFAULT_MAX_SKEW_S, SkewGate
from .contract import FedFabricContract


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    skew = int(os.environ.get("FEDFABRIC_MAX_CLOCK_SKEW_S", DEFAULT_MAX_SKEW_S))
    run_from_env(Chaincode([FedFabricContract(SkewGate(skew))]))


if __name__ == "__main__":
    main()
