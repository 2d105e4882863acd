"""hfc_client without a network: the profile as hfc reads it, and the process hfc refuses to share."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedfabric.network.hfc_client import HfcError, hfc_profile, open_session
from fedfabric.network.profile import write_profile


@pytest.fixture(scope="module")
def profile(generated_net, tmp_path_factory: pytest.TempPathFactory) -> dict:
    files = write_profile(generated_net.layout, "org2", "User1", tmp_path_factory.mktemp("hfc") / "org2")
    return json.loads(files.json.read_text())


def test_hfc_reads_targets_and_tls_files(profile: dict) -> None:
    hp = hfc_profile(profile)
    for section in ("peers", "orderers"):
        for name, node in hp[section].items():
            assert node["url"] == profile[section][name]["url"].removeprefix("grpcs://")
            assert node["url"].startswith("127.0.0.1:") and "://" not in node["url"]
            assert Path(node["tlsCACerts"]["path"]).read_text() == profile[section][name]["tlsCACerts"]["pem"]
            # only real gRPC channel options reach grpc; hfc insists on the TLS name one
            assert node["grpcOptions"] == {"grpc.ssl_target_name_override": name}
    assert hp["organizations"] == profile["organizations"] and hp["channels"] == profile["channels"]
    assert hp["certificateAuthorities"] == profile["certificateAuthorities"]
    assert profile["peers"][next(iter(profile["peers"]))]["url"].startswith("grpcs://")   # input untouched


def test_hfc_profile_refusals(profile: dict) -> None:
    plain = copy.deepcopy(profile)
    name = next(iter(plain["peers"]))
    plain["peers"][name]["url"] = plain["peers"][name]["url"].replace("grpcs://", "grpc://")
    with pytest.raises(HfcError, match=r"is not grpcs://"):
        hfc_profile(plain)
    inline_only = copy.deepcopy(profile)
    del inline_only["orderers"][next(iter(inline_only["orderers"]))]["tlsCACerts"]["path"]
    with pytest.raises(HfcError, match="tlsCACerts has no path"):
        hfc_profile(inline_only)


def test_refuses_a_process_with_fabric_protos(profile: dict, tmp_path: Path) -> None:
    import fabric_protos  # noqa: F401  (the rest of fedfabric lives with these)

    with pytest.raises(HfcError, match="fabric_protos is already imported in this process"):
        open_session(tmp_path / "unused.json", tmp_path / "unused.json")


def test_refuses_the_default_protobuf_runtime(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"}
    code = ("import sys; from fedfabric.network.hfc_client import HfcError, open_session\n"
            "try:\n    open_session('p.json', 'i.json')\nexcept HfcError as e:\n    sys.exit(str(e))\n")
    res = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 1 and "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python" in res.stderr
