"""Live: clients that know nothing of fedfabric connect with a connection profile alone.

* the real ``peer`` CLI, in an environment built only from the profile and identity files (and
  Fabric's own default core.yaml): ``channel getinfo``, ``chaincode query`` and an ``invoke``
  endorsed by org1 and org2 and ordered by the profile's orderer;
* the official Fabric Gateway client for Node (``@hyperledger/fabric-gateway``, installed from npm
  with ``npm ci`` from ``tests/interop/node/package-lock.json`` into the Fabric build cache):
  evaluate, submit, and a chaincode error with the endorsing org's message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from fedfabric.network import paths

from .conftest import private_key_files

pytestmark = pytest.mark.live

NODE_DIR = Path(__file__).parent / "node"


def _peer_env(profile: dict, identity: dict, fabric_cfg: Path, home: Path) -> dict[str, str]:
    """The peer CLI's settings for the profile's own peer, from the profile and identity only."""
    org = profile["organizations"][profile["client"]["organization"]]
    peer = profile["peers"][org["peers"][0]]
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "FABRIC_CFG_PATH": str(fabric_cfg),
            "CORE_PEER_TLS_ENABLED": "true", "CORE_PEER_ADDRESS": peer["url"].removeprefix("grpcs://"),
            "CORE_PEER_TLS_ROOTCERT_FILE": peer["tlsCACerts"]["path"],
            "CORE_PEER_LOCALMSPID": org["mspid"], "CORE_PEER_MSPCONFIGPATH": identity["mspDir"]}


def test_peer_cli_from_the_profile_only(live_network, interop_cc, org1_profile, tmp_path: Path) -> None:
    profile = json.loads(org1_profile.json.read_text())
    identity = json.loads(org1_profile.identity.read_text())
    peer_bin = live_network.fabric.binary("peer")
    env = _peer_env(profile, identity, peer_bin.parent.parent / "config", tmp_path)
    assert not any(str(live_network.layout.root) in v for v in env.values())

    def peer(*args: str) -> tuple[str, str]:
        res = subprocess.run([str(peer_bin), *args], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert res.returncode == 0, res.stderr[-2000:]
        return res.stdout, res.stderr

    def height() -> int:
        return json.loads(peer("channel", "getinfo", "-c", channel)[0].split("Blockchain info: ", 1)[1])["height"]

    channel = next(iter(profile["channels"]))
    before = height()
    assert before >= 1
    key = f"cli-{time.time_ns()}"
    orderer = profile["orderers"][profile["channels"][channel]["orderers"][0]]
    endorsers = []
    for org_name in ("org1", "org2"):       # the chaincode's policy: AND(Org1MSP.peer, Org2MSP.peer)
        p = profile["peers"][profile["organizations"][org_name]["peers"][0]]
        endorsers += ["--peerAddresses", p["url"].removeprefix("grpcs://"),
                      "--tlsRootCertFiles", p["tlsCACerts"]["path"]]
    _, log = peer("chaincode", "invoke", "-C", channel, "-n", interop_cc,
                  "-c", json.dumps({"Args": ["put", key, "from-cli"]}),
               "-o", orderer["url"].removeprefix("grpcs://"), "--tls", "--cafile", orderer["tlsCACerts"]["path"],
               *endorsers, "--waitForEvent")
    assert "committed with status (VALID)" in log
    assert peer("chaincode", "query", "-C", channel, "-n", interop_cc, "-c",
                json.dumps({"Args": ["get", key]}))[0] == "from-cli\n"
    assert height() > before
    assert private_key_files(tmp_path) == []       # the CLI wrote no copy of the key


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """@hyperledger/fabric-gateway and @grpc/grpc-js as pinned in the lock file, installed once."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not on PATH: the official Node Gateway client cannot run here")
    lock = (NODE_DIR / "package-lock.json").read_bytes()
    target = paths.cache_root() / "interop-node"
    stamp = target / ".lock"
    if not stamp.exists() or stamp.read_bytes() != lock:
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(NODE_DIR / name, target / name)
        res = subprocess.run(["npm", "ci", "--omit=optional", "--ignore-scripts", "--no-audit", "--no-fund"],
                             cwd=target, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]
        stamp.write_bytes(lock)
    return target / "node_modules"


def test_official_node_gateway_client(live_network, interop_cc, org1_profile, node_modules: Path,
                                      tmp_path: Path) -> None:
    key = f"node-{time.time_ns()}"
    ops = [{"op": "submit", "fn": "put", "args": [key, "from-node"]},
           {"op": "evaluate", "fn": "get", "args": [key]},
           {"op": "evaluate", "fn": "no_such_function", "args": []},
           {"op": "submit", "fn": "no_such_function", "args": []}]
    (tmp_path / "ops.json").write_text(json.dumps(ops))
    res = subprocess.run(["node", str(NODE_DIR / "gateway_client.js"), str(org1_profile.json),
                          str(org1_profile.identity), interop_cc, str(tmp_path / "ops.json")],
                         env={**os.environ, "NODE_PATH": str(node_modules)}, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    submitted, got, evaluate_err, submit_err = [json.loads(line) for line in res.stdout.splitlines()]
    assert submitted["ok"] and submitted["result"] == "from-node"
    assert submitted["status"] == 0          # TxValidationCode VALID
    assert len(submitted["txId"]) == 64 and submitted["block"] > 0
    assert got == {"ok": True, "result": "from-node"}
    assert evaluate_err["ok"] is False and "round 3 is not open" in evaluate_err["message"]
    assert submit_err["ok"] is False and submit_err["error"] == "EndorseError"
    assert "Org1MSP: chaincode response 500, round 3 is not open" in submit_err["details"]
