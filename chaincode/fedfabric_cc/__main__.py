"""Chaincode-as-a-service entry point: ``python -m fedfabric_cc`` (CHAINCODE_* env vars)."""
from __future__ import annotations

import logging

from fabshim.contract import Chaincode
from fabshim.server import run_from_env

from .contract import FedFabricContract


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_from_env(Chaincode([FedFabricContract()]))


if __name__ == "__main__":
    main()
