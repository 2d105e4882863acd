"""Live: hfc's ``Client`` (fabric-sdk-py 1.0.0), built from a connection profile, queries and invokes.

Runs ``hfc_driver.py`` in a process of its own (hfc's protobufs clash with ``fabric_protos``, and
need the pure-Python protobuf runtime) against the ``interop`` chaincode, whose policy needs org1
*and* org2: an invoke endorsed by both commits; one endorsed by org1 alone is ordered, invalidated
by every peer as ENDORSEMENT_POLICY_FAILURE and raised by hfc as an error; the key it wrote is not
there. The process's working and temporary directories are checked for copies of the key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import private_key_files

pytestmark = pytest.mark.live

DRIVER = Path(__file__).parent / "hfc_driver.py"


@pytest.fixture(scope="module")
def hfc_run(live_network, interop_cc, org1_profile, tmp_path_factory: pytest.TempPathFactory) -> dict:
    pytest.importorskip("aiogrpc", reason="hfc's Client needs the [hfc] extra (setup.sh installs it)")
    work = tmp_path_factory.mktemp("hfc-work")
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python", "TMPDIR": str(work), "HOME": str(work)}
    env.pop("PYTHONPATH", None)
    key = f"hfc-{time.time_ns()}"
    res = subprocess.run([sys.executable, str(DRIVER), str(org1_profile.json), str(org1_profile.identity),
                          interop_cc, key], env=env, cwd=work, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    return {"out": json.loads(res.stdout.splitlines()[-1]), "stderr": res.stderr, "work": work, "key": key}


def test_query_and_invoke(hfc_run) -> None:
    out = hfc_run["out"]
    assert out["invoke"] == {"ok": True, "value": "from-hfc"}
    assert out["query"] == {"ok": True, "value": "from-hfc"}
    assert out["height_after"] > out["height_before"]


def test_endorsement_policy_failure_is_an_error(live_network, interop_cc, hfc_run) -> None:
    out = hfc_run["out"]
    assert out["invoke_one_org"]["ok"] is False
    assert out["invoke_one_org"]["message"] == "['ENDORSEMENT_POLICY_FAILURE']"
    assert out["query_one_org"] == {"ok": True, "value": ""}       # the invalid transaction wrote nothing
    # the official client sees the same ledger
    from ..ledger.live_helpers import channel_of, connect_org

    with connect_org(live_network, "org2") as gw:
        contract = gw.get_network(channel_of(live_network)).get_contract(interop_cc)
        assert contract.evaluate("get", args=[hfc_run["key"]]) == b"from-hfc"
        assert contract.evaluate("get", args=[hfc_run["key"] + "-lone"]) == b""


def test_chaincode_errors(hfc_run) -> None:
    out = hfc_run["out"]
    # hfc's chaincode_invoke returns a failed endorsement's message instead of raising (hfc 1.0.0)
    assert out["invoke_chaincode_error"] == {"ok": True, "value": "round 3 is not open"}
    assert out["query_chaincode_error"]["ok"] is False
    assert 'message: "round 3 is not open"' in out["query_chaincode_error"]["message"]


def test_no_key_written_and_no_debug_log(hfc_run, org1_profile) -> None:
    assert private_key_files(hfc_run["work"]) == []
    assert str(org1_profile.private_key) not in hfc_run["stderr"]      # hfc's DEBUG "Create user with …" line
    assert "Send proposal" not in hfc_run["stderr"]
