"""Drive hfc's ``Client`` (fabric-sdk-py) from a connection profile; run by test_live_hfc.py in its own process.

    PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python python tests/interop/hfc_driver.py PROFILE IDENTITY CHAINCODE KEY

Prints one JSON object: what each call returned or raised. Imports nothing that loads
``fabric_protos`` (hfc's protobufs clash with them).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "app"))

from fedfabric.network.hfc_client import open_session  # noqa: E402


def outcome(run: Callable[[Awaitable[Any]], Any], call: Awaitable[Any]) -> dict[str, Any]:
    try:
        return {"ok": True, "value": str(run(call))}
    except Exception as exc:     # hfc raises bare Exceptions carrying the statuses
        return {"ok": False, "error": type(exc).__name__, "message": str(exc)}


def main(profile: str, identity: str, chaincode: str, key: str) -> None:
    with open_session(profile, identity) as s:
        c, u, ch = s.client, s.user, s.channel
        org1, both = s.peers_of("org1"), s.peers_of("org1", "org2")
        invoke = lambda peers, fcn, args: c.chaincode_invoke(  # noqa: E731
            requestor=u, channel_name=ch, peers=peers, fcn=fcn, args=args, cc_name=chaincode, wait_for_event=True)
        query = lambda fcn, args: c.chaincode_query(  # noqa: E731
            requestor=u, channel_name=ch, peers=org1, fcn=fcn, args=args, cc_name=chaincode)
        out = {
            "height_before": s.run(c.query_info(requestor=u, channel_name=ch, peers=org1)).height,
            "invoke": outcome(s.run, invoke(both, "put", [key, "from-hfc"])),
            "query": outcome(s.run, query("get", [key])),
            "invoke_one_org": outcome(s.run, invoke(org1, "put", [key + "-lone", "x"])),
            "query_one_org": outcome(s.run, query("get", [key + "-lone"])),
            "invoke_chaincode_error": outcome(s.run, invoke(both, "no_such_function", [])),
            "query_chaincode_error": outcome(s.run, query("no_such_function", [])),
            "height_after": s.run(c.query_info(requestor=u, channel_name=ch, peers=org1)).height,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:])
