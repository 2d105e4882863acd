"""Live: admitting a fourth org to a running channel by governance, then removing it -- every step the
``fedfabric org`` / ``network.sh`` command an org admin runs, no restart of the network.

The consortium (orderer org, org1..org3) runs on one site; org4 initializes its own home on a site of
its own (its keys never enter the consortium's run directory), sends its definition; org1 proposes the
channel update, org2 signs it (org1 + org2 hold the quorum of stake and a majority of the orgs) and
submits it; org4 brings its peer up, which joins and catches up; the chaincode's next sequence takes
org4 into its collection; org4 gets stake through the stake governance and writes. Then org1 proposes
removing it, org3 and org2 sign, org3 submits, and org4's writes are refused.
(With stake, org4 counts: removing it takes org1, org2 and org3, where admitting it took two.)

Ports of its own (tests/ports.py); both sites are taken down at the end, also when a test fails.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from fedfabric.client import Rejected, open_client
from fedfabric.ledger import GatewayError
from fedfabric.network import definition, paths
from fedfabric.network.deploy import product_deployment
from fedfabric.network.manager import SiteManager
from fedfabric.node.bootstrap import init_consortium
from fedfabric.orgs import MembershipClient
from fedfabric_protocol import stakerule

from ..conftest import default_raw, shift_ports, test_config
from ..polling import wait_until
from ..ports import OFFSETS, org4_entry
from .keyscan import key_files
from .procs import run_dir_processes

pytestmark = pytest.mark.live
OFFSET = OFFSETS["governance"]
ORG4 = org4_entry(OFFSET, host="127.0.0.1")
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    base = tmp_path_factory.mktemp("live-governance")
    cfg = base / "consortium.yaml"
    cfg.write_text(yaml.safe_dump(shift_ports(default_raw(), OFFSET)))
    (base / "org4.yaml").write_text(yaml.safe_dump(ORG4))
    main = SiteManager(test_config(OFFSET), base / "consortium")
    org4 = SiteManager(test_config(OFFSET), base / "org4", orgs=[])
    try:
        main.up()
        main.deploy(product_deployment(main.config))
        gw, admin = open_client("org1", "Admin", config=main.config, run_root=main.layout.root)
        with gw:
            admin.wait_ready()
            init_consortium(admin, main.config)
        yield {"base": base, "cfg": cfg, "main": main, "org4": org4}
    finally:
        org4.down()
        main.down()


def run(world: dict, site: str, *args: str, tool: str = "fedfabric") -> subprocess.CompletedProcess[str]:
    """One command of one org's admin, on that org's site (``tool``: fedfabric or network.sh)."""
    common = ["--config", str(world["cfg"]), "--run-dir", str(world[site].layout.root)]
    cmd = ([str(paths.NETWORK_DIR / "network.sh"), *common, *args] if tool == "network"
           else [str(paths.REPO_ROOT / ".venv" / "bin" / "fedfabric"), *args, *common])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ})


def _ok(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def test_the_new_org_initializes_its_own_home(world) -> None:
    _ok(run(world, "org4", "org", "init", "--new", str(world["base"] / "org4.yaml"), tool="network"))
    _ok(run(world, "org4", "org", "definition", "--org", "org4", "--out", str(world["base"] / "org4.json"),
            tool="network"))
    org4_root = world["org4"].layout.root
    assert [p for p in key_files(org4_root) if not p.is_relative_to(org4_root / "orgs" / "org4")] == []
    assert not [p for p in key_files(world["main"].layout.root) if "/org4" in str(p)]
    TIMES["definition_bytes"] = (world["base"] / "org4.json").stat().st_size


def test_propose_sign_submit_admits_org4_by_stake_and_admin_majority(world) -> None:
    base = world["base"]
    t0 = time.monotonic()
    TIMES["t0"] = t0
    out = _ok(run(world, "main", "org", "propose-add", str(base / "org4.json"), "--proposal", "add-org4",
                  "--out", str(base / "add-org4.pb"), "--reason", "a fourth hospital joins", "--org", "org1"))
    assert "adds Org4MSP; signed by Org1MSP" in out and "pending, approved by Org1MSP" in out
    early = run(world, "main", "org", "submit", "add-org4", str(base / "add-org4.pb"),
                "--definition", str(base / "org4.json"), "--org", "org1")
    assert early.returncode == 2 and "who do not hold the consortium's quorum of stake yet" in early.stderr
    out = _ok(run(world, "main", "org", "sign", "add-org4", str(base / "add-org4.pb"),
                  "--definition", str(base / "org4.json"), "--org", "org2"))
    assert "signed by Org1MSP, Org2MSP" in out and "applied, approved by Org1MSP, Org2MSP" in out
    out = _ok(run(world, "main", "org", "submit", "add-org4", str(base / "add-org4.pb"),
                  "--definition", str(base / "org4.json"), "--org", "org2"))
    assert "committed in config block" in out
    TIMES["channel_update"] = time.monotonic() - t0
    listed = _ok(run(world, "main", "org", "list", "--org", "org3"))
    assert "add Org4MSP, applied, approved by Org1MSP, Org2MSP; channel update in config block" in listed
    assert "signed by Org1MSP, Org2MSP" in listed


def test_org4_joins_the_running_channel_and_the_chaincode(world) -> None:
    main, org4 = world["main"], world["org4"]
    shared = [main.layout.own_definition(n) for n in ("orderer", "org1", "org2", "org3")]
    _ok(run(world, "org4", "org", "import", *map(str, shared), tool="network"))
    org4.refresh()
    org4.up()
    main.refresh()
    assert [o.name for o in main.config.orgs] == ["org1", "org2", "org3", "org4"]
    main.deploy(product_deployment(main.config))     # the next sequence: org4 in the collection
    org4.deploy(product_deployment(org4.config))     # org4 approves the committed definition
    assert {s.node_id for s in org4.status() if s.up} == {"peer0.org4", "ca.org4", "cc-fedfabric.org4"}
    heights = main.heights()
    assert wait_until(lambda: (org4.heights()["peer0.org4"] or 0) >= max(h for h in heights.values() if h),
                      30, 0.3), "org4's peer did not catch up with the channel"


def test_org4_gets_stake_by_governance_and_writes(world) -> None:
    main, org4 = world["main"], world["org4"]
    _ok(run(world, "main", "consortium", "propose", "stake", "grant-org4", "Org4MSP", "+100", "--reason",
            "joined the study", "--org", "org1"))
    _ok(run(world, "main", "consortium", "approve", "stake", "grant-org4", "--org", "org2"))
    gw, admin4 = open_client("org4", "Admin", config=org4.config, run_root=org4.layout.root)
    with gw:
        admin4.wait_ready()
        assert wait_until(lambda: admin4.get_org("Org4MSP")["stake"] == 100, 20, 0.2), "org4 sees no stake"
        written = admin4.transfer_stake("Org1MSP", 1)
        TIMES["first_write"] = time.monotonic() - TIMES["t0"]
        assert written.block_number > 0
        policy = admin4.get_policy()
    assert "Org4MSP" in stakerule.rule_orgs(policy)


def test_removing_org4_suspends_it_and_takes_it_off_the_channel(world) -> None:
    base = world["base"]
    _ok(run(world, "main", "org", "propose-remove", "Org4MSP", "--proposal", "rm-org4", "--out",
            str(base / "rm-org4.pb"), "--reason", "left the study", "--org", "org1"))
    _ok(run(world, "main", "org", "sign", "rm-org4", str(base / "rm-org4.pb"), "--org", "org3"))
    early = run(world, "main", "org", "submit", "rm-org4", str(base / "rm-org4.pb"), "--org", "org3")
    # org4 holds stake now: org1 + org3 (201 of 400) are short of 2/3, though they are 2 of the 3 others
    assert early.returncode == 2 and "who do not hold the consortium's quorum of stake yet" in early.stderr
    _ok(run(world, "main", "org", "sign", "rm-org4", str(base / "rm-org4.pb"), "--org", "org2"))
    out = _ok(run(world, "main", "org", "submit", "rm-org4", str(base / "rm-org4.pb"), "--org", "org3"))
    assert "leaves the channel with Org1MSP, Org2MSP, Org3MSP" in out
    gw, reader = open_client("org1", "User1", config=world["main"].config, run_root=world["main"].layout.root)
    with gw:
        org = reader.get_org("Org4MSP")
        assert (org["status"], org["removed_by"]) == ("suspended", "rm-org4")
        prop = MembershipClient(reader.contract).get_membership("rm-org4")
        assert prop["channel_update"]["signers"] == ["Org1MSP", "Org2MSP", "Org3MSP"]
    org4 = world["org4"]
    gw, admin4 = open_client("org4", "Admin", config=org4.config, run_root=org4.layout.root)
    with gw, pytest.raises((Rejected, GatewayError)):
        admin4.transfer_stake("Org1MSP", 1)
    world["main"].refresh()
    assert [o.name for o in world["main"].config.orgs] == ["org1", "org2", "org3"]


def test_figures_and_nothing_left_behind(world) -> None:
    roots: list[Path] = [world["main"].layout.root, world["org4"].layout.root]
    print(f"\nadd org live: channel update {TIMES.get('channel_update', 0):.1f} s, proposal to first write "
          f"{TIMES.get('first_write', 0):.1f} s; org4 shares {TIMES.get('definition_bytes')} bytes")
    world["org4"].down()
    world["main"].down()
    assert all(run_dir_processes(r) == [] for r in roots)
