"""Native (no Docker) bring-up of the consortium's Fabric network from ``network/consortium.yaml``.

Modules, one job each:

* :mod:`.config`    -- parse and validate ``consortium.yaml`` into typed objects
* :mod:`.fabricbin` -- locate the pinned Fabric binaries and run them with clear errors
* :mod:`.material`  -- crypto material (cryptogen) and the channel genesis block (configtxgen)
* :mod:`.nodes`     -- per-node environment, process start/stop, health checks
* :mod:`.ca`        -- each org's Fabric CA server: TLS cert, bootstrap admin, config, node spec
* :mod:`.enroll`    -- enroll users with a fedfabric role through the org's CA (hfc)
* :mod:`.manager`   -- ``up | down | status | logs`` orchestration
* :mod:`.profile`   -- connection profiles for Fabric's own clients (SDKs, gateway clients, peer CLI)
* :mod:`.hfc_client` -- hfc's ``Client`` built from such a profile (in a process of its own)

Its command line, behind ``network/network.sh``, is ``fedfabric network`` (:mod:`fedfabric.cli.network`).
"""

from .config import ConfigError, ConsortiumConfig, load_config

__all__ = ["ConfigError", "ConsortiumConfig", "load_config"]
