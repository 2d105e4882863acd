"""Live: a consortium of real hosts -- the orderer org and each peer org in its own Linux network namespace
with its own address on a bridge, certificates for those addresses, each org's nodes started from its
own run directory inside its namespace (``ip netns exec``).

A secure job runs across them with one ``fedfabric node`` per org inside its namespace. org3's link is cut
(``ip link set … down``) the moment its round-1 ballot commits: round 2 completes by the survivors'
seed reveals (dropout recovery); the link comes back, org3's peer catches up, its node rebuilds the
versions it missed (fetched from the other orgs' nodes across the bridge, hash-checked) and votes in
the round open by then. Then a fourth org, on a fifth host, is
admitted live by governance (channel update signed by org1 and org2, chaincode's next sequence, stake
granted) and contributes to a second job.

Needs root (namespaces, veths, a bridge); skipped otherwise. Ports of its own (tests/ports.py) inside the
namespaces. Every namespace, link and process is removed at the end, also when a test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from cryptography import x509

from fedfabric.client import open_client
from fedfabric.network import definition
from fedfabric.network.config import parse_config, parse_org
from fedfabric.network.deploy import product_deployment
from fedfabric.network.manager import SiteManager
from fedfabric.node.bootstrap import create_job, init_consortium
from fedfabric.node.jobfile import parse_job
from fedfabric.orgs import MembershipClient, Site
from fedfabric import orgs as governance

from ..conftest import default_raw, shift_ports
from ..ports import OFFSETS, org4_entry
from .netns import Hosts
from .procs import run_dir_processes

pytestmark = [pytest.mark.live,
              pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2")]
OFFSET = OFFSETS["netns"]
PREFIX, SUBNET = "ff12", "10.231.12.0/24"
HOSTS = ["orderer", "org1", "org2", "org3", "org4"]
ORGS = ["org1", "org2", "org3"]
JOB1 = {"job_id": "netns-1", "dataset": "breast_cancer", "model": {"arch": "logreg"}, "rounds": 6,
        "partition": {"kind": "dirichlet", "alpha": 0.5}, "training": {"epochs": 1, "lr": 0.01},
        "privacy": "secure", "quorum": "2/3", "min_participants": 2, "participants": ORGS,
        "windows": {"registration_s": 60, "submission_s": 30, "approval_s": 60}}
# a write that names the cut org's peer waits for Fabric's gateway to find its connection dead (gRPC's 20 s
# keepalive timeout) before the client falls back to the orgs still reachable: round 2's window allows it
JOB2 = {**JOB1, "job_id": "netns-2", "rounds": 2, "partition": {"kind": "iid"}, "participants": ORGS + ["org4"]}
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    base = tmp_path_factory.mktemp("live-netns")
    hosts = Hosts(PREFIX, SUBNET, HOSTS)
    w: dict = {"base": base, "hosts": hosts, "procs": {}, "sites": {}}
    try:
        raw = shift_ports(default_raw(), OFFSET)
        raw["orderer_org"]["host"] = hosts.address["orderer"]
        for o in raw["orgs"]:
            o["host"] = hosts.address[o["name"]]
        w["cfg"] = base / "consortium.yaml"
        w["cfg"].write_text(yaml.safe_dump(raw))
        config = parse_config(raw)
        w["sites"]["orderer"] = SiteManager(config, base / "orderer", orgs=[], orderer=True,
                                        launcher=hosts.launcher("orderer"))
        for name in ORGS:
            w["sites"][name] = SiteManager(config, base / name, orgs=[name], launcher=hosts.launcher(name))
        w["sites"]["org4"] = SiteManager(config, base / "org4", orgs=[], launcher=hosts.launcher("org4"))
        yield w
    finally:
        _stop_nodes(w["procs"])
        for name, net in w["sites"].items():
            _keep_logs(net, base / "logs" / name)
            net.down()
        hosts.close()


def _keep_logs(net: SiteManager, dest: Path) -> None:
    """Node and Fabric logs survive the site's run directory (for a post-mortem under pytest's basetemp)."""
    for log in [*net.layout.root.glob("logs/*.log"), *net.layout.root.glob("fl/*/node.log")]:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, dest / f"{log.parent.name}-{log.name}")


def _exchange(sites: dict[str, SiteManager], names: list[str]) -> None:
    for name in names:
        for other in names:
            if other != name:
                d = definition.load_definition(sites[other].layout.own_definition(other), sites[name].config)
                definition.import_definition(sites[name].layout, d)
        sites[name].refresh()


def _listeners(ns: str) -> set[str]:
    out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Hltn"], capture_output=True, text=True).stdout
    hosts = {line.split()[3].rpartition(":")[0] for line in out.splitlines()}
    return {h.removeprefix("[::ffff:").removesuffix("]") for h in hosts}   # gRPC's dual-stack sockets


def _admin(site: SiteManager, org: str, user: str = "Admin"):
    return open_client(org, user, config=site.config, run_root=site.layout.root)


def test_each_org_runs_on_its_own_host(world) -> None:
    sites, hosts = world["sites"], world["hosts"]
    t0 = time.monotonic()
    for name in ["orderer", *ORGS]:
        sites[name].init_orgs()
    _exchange(sites, ["orderer", *ORGS])
    sites["orderer"].up()
    for name in ORGS:
        sites[name].up()
    for name in ORGS:
        sites[name].deploy(product_deployment(sites[name].config))
    TIMES["up"] = time.monotonic() - t0
    for name in ["orderer", *ORGS]:
        assert _listeners(hosts.ns(name)) == {hosts.address[name]}, name     # nothing on loopback
    org1 = sites["org1"].config.org("org1")
    cert = x509.load_pem_x509_certificate((sites["org1"].layout.peer_dir(org1) / "tls" / "server.crt").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert hosts.address["org1"] in [str(a) for a in sans.get_values_for_type(x509.IPAddress)]
    gw, admin = _admin(sites["org1"], "org1")
    with gw:
        admin.wait_ready()
        assert init_consortium(admin, sites["org1"].config)


def _start_node(world: dict, org: str, job: str) -> None:
    site = world["sites"][org]
    log = site.layout.root / "fl" / org / "node.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        world["procs"][(org, job)] = subprocess.Popen(
            [*world["hosts"].launcher(org), sys.executable, "-m", "fedfabric", "node", "--org", org, "--job", job,
             "--run-dir", str(site.layout.root), "--config", str(world["cfg"])],
            stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)


def _stop_nodes(procs: dict) -> None:
    for p in procs.values():
        if p.poll() is None:
            p.terminate()
    for p in procs.values():
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _wait(pred, timeout: float, what: str, world: dict | None = None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            v = pred()
        except Exception:  # noqa: BLE001 - a peer still catching up answers later
            v = None
        if v:
            return v
        time.sleep(0.3)
    tails = ""
    if world:
        for (org, _job), _p in world["procs"].items():
            log = world["sites"][org].layout.root / "fl" / org / "node.log"
            tails += f"\n--- {org}\n" + "\n".join(log.read_text().splitlines()[-15:]) if log.exists() else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{tails}")


class OnEvent:
    """Runs ``action`` the moment a given event of a job commits (watched on another org's peer):
    ``trigger`` is (event name, round or None for any round after 2, msp id or None)."""

    def __init__(self, events, job_id: str, trigger: tuple[str, int | None, str | None], action) -> None:
        self.events, self.job_id, self.trigger, self.action = events, job_id, trigger, action
        self.at: float | None = None
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        for ev in self.events:
            body = json.loads(ev.payload)
            name, r, msp = self.trigger
            if (ev.event_name, body.get("msp_id")) == (name, msp) and body.get("job_id") == self.job_id and \
                    (body.get("round") == r if r is not None else (body.get("round") or 0) > 2):
                self.action()
                self.at = time.monotonic()
                return


def _signal_nodes(world: dict, orgs: list[str], job: str, sig: int) -> None:
    for org in orgs:
        os.kill(world["procs"][(org, job)].pid, sig)


def test_a_secure_job_survives_a_cut_link_and_the_org_comes_back(world) -> None:
    sites, hosts = world["sites"], world["hosts"]
    gw, admin = _admin(sites["org1"], "org1")
    with gw:
        cfg = sites["org1"].config
        job_id = create_job(admin, parse_job(dict(JOB1)), {o.name: o.msp_id for o in cfg.orgs})["job_id"]
        net = gw.get_network(cfg.channel)
        events, events2, events3 = (net.chaincode_events("fedfabric") for _ in range(3))
        cutter = OnEvent(events, job_id, ("Voted", 1, "Org3MSP"), lambda: hosts.cut("org3"))
        # two-org rounds of this small model close in ~0.2 s, faster than a peer reconnects after its
        # link comes back (~3 s): the survivors' nodes pause the moment round 2 finalizes, so the job is
        # still running when org3 is back, and resume once org3 registered for a round again
        survivors = ["org1", "org2"]
        paused = OnEvent(events2, job_id, ("RoundFinalized", 2, None),
                         lambda: _signal_nodes(world, survivors, job_id, signal.SIGSTOP))
        back = OnEvent(events3, job_id, ("Registered", None, "Org3MSP"), lambda: None)
        t0 = time.monotonic()
        for org in ORGS:
            _start_node(world, org, job_id)
        _wait(lambda: cutter.at, 90, "org3's round-1 ballot (then its link is cut)", world)
        r2 = _wait(lambda: (lambda r: r if r.state.value == "finalized" else None)(admin.get_round(job_id, 2)), 90,
                   "round 2 to finalize without org3", world)
        TIMES["dropout_round"] = time.monotonic() - cutter.at
        assert r2.outcome["left_out"] == ["Org3MSP"]
        report = admin.round_report(job_id, 2)["participants"]
        assert report["Org3MSP"]["update"] is None
        assert all(report[m]["revealed_for"] == ["Org3MSP"] for m in ("Org1MSP", "Org2MSP"))
        _wait(lambda: paused.at, 30, "the survivors to pause after round 2", world)
        hosts.restore("org3")
        restored = time.monotonic()
        try:
            _wait(lambda: back.at, 90, "org3 to register for a round again", world)
        finally:
            _signal_nodes(world, survivors, job_id, signal.SIGCONT)
        TIMES["restore_to_registered"] = time.monotonic() - restored
        job = _wait(lambda: (lambda j: j if j["status"] != "active" else None)(admin.get_job(job_id)), 120,
                    "job 1 to complete", world)
        TIMES["job1"] = time.monotonic() - t0
        events.close()
        events2.close()
        events3.close()
        assert job["rounds_finalized"] == JOB1["rounds"] and job["rounds_failed"] == 0
        versions = [admin.get_version(job_id, i) for i in range(1, JOB1["rounds"] + 1)]
    contributed = [i + 1 for i, v in enumerate(versions) if "Org3MSP" in [c["msp_id"] for c in v["contributors"]]]
    voted = [i + 1 for i, v in enumerate(versions) if "Org3MSP" in [a["msp_id"] for a in v["approvals"]]]
    assert contributed[:1] == [1] and 2 not in contributed and 2 not in voted, (contributed, voted)
    # back on the bridge, org3's peer catches up and its node votes again in the round open by then
    assert [r for r in voted if r > 2], voted
    TIMES["org3_voted_again_in_round"] = min(r for r in voted if r > 2)
    TIMES["restore_to_job_end"] = time.monotonic() - restored
    for org in ORGS:
        assert world["procs"][(org, job_id)].wait(30) == 0, f"{org}'s node did not finish cleanly"


def test_a_fourth_org_on_its_own_host_is_admitted_live_and_contributes(world) -> None:
    sites, hosts, base = world["sites"], world["hosts"], world["base"]
    org4 = sites["org4"]
    t0 = time.monotonic()
    entry = {**org4_entry(OFFSET, hosts.address["org4"]), "stake": 0}
    d4 = org4.init_new_org(parse_org(entry, "org4", org4.config.domain))
    shared = base / "org4.json"
    shutil.copyfile(org4.layout.own_definition("org4"), shared)
    TIMES["definition_bytes"] = shared.stat().st_size
    update = base / "add-org4.pb"
    for org, step in (("org1", "propose"), ("org2", "sign"), ("org2", "submit")):
        site = sites[org]
        gw, client = _admin(site, org)
        with gw:
            me = Site(site.fabric, site.layout, site.config.org(org))
            mc = MembershipClient(client.contract, me.org.msp_id)
            if step == "propose":
                governance.propose_add(me, mc, shared, "add-org4", update, "a fourth hospital on its own host")
            elif step == "sign":
                governance.sign(me, mc, "add-org4", update, shared)
            else:
                block, submitted, prop = governance.submit(me, mc, "add-org4", update, shared)
                assert prop["channel_update"]["signers"] == ["Org1MSP", "Org2MSP"]
    TIMES["channel_update"] = time.monotonic() - t0
    d = definition.load_definition(shared, sites["org3"].config)
    definition.import_definition(sites["org3"].layout, d)      # the org that did not sign imports it
    for name in ("orderer", *ORGS):
        src = sites[name].layout.own_definition(name)
        definition.import_definition(org4.layout, definition.load_definition(src, org4.config))
    for net in sites.values():
        net.refresh()
    org4.up()
    for name in [*ORGS, "org4"]:
        sites[name].deploy(product_deployment(sites[name].config))
    gw, admin = _admin(sites["org1"], "org1")
    with gw:
        admin.propose_stake_adjustment("grant-org4", "Org4MSP", 100, "joined the study")
        gw2, admin2 = _admin(sites["org2"], "org2")
        with gw2:
            admin2.approve_stake_adjustment("grant-org4")
        cfg = sites["org1"].config
        job_id = create_job(admin, parse_job(dict(JOB2)), {o.name: o.msp_id for o in cfg.orgs})["job_id"]
        events = gw.get_network(cfg.channel).chaincode_events("fedfabric")
        first: dict[str, float] = {}

        def watch() -> None:
            for ev in events:
                body = json.loads(ev.payload)
                if ev.event_name == "UpdateSubmitted" and body.get("msp_id") == "Org4MSP":
                    first["at"] = time.monotonic()
                    return
        threading.Thread(target=watch, daemon=True).start()
        for org in [*ORGS, "org4"]:
            _start_node(world, org, job_id)
        job = _wait(lambda: (lambda j: j if j["status"] != "active" else None)(admin.get_job(job_id)), 150,
                    "job 2 to complete", world)
        events.close()
        assert job["rounds_finalized"] == 2, job
        v1 = admin.get_version(job_id, 1)
    assert [c["msp_id"] for c in v1["contributors"]] == ["Org1MSP", "Org2MSP", "Org3MSP", "Org4MSP"]
    assert "at" in first
    TIMES["add_to_first_contribution"] = first["at"] - t0
    assert d4.msp_id == "Org4MSP"


def test_figures_and_every_namespace_link_and_process_is_gone(world) -> None:
    hosts = world["hosts"]
    print("\nnetns figures: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                          for k, v in TIMES.items()))
    roots: list[Path] = [net.layout.root for net in world["sites"].values()]
    _stop_nodes(world["procs"])
    for net in world["sites"].values():
        net.down()
    hosts.close()
    assert hosts.leftovers() == []
    assert all(run_dir_processes(r) == [] for r in roots)
