"""What a running node survives (transient refusals, a corrupt aggregate) and what stops it with a clear
error (unknown job, not a participant, a recipe it cannot follow) — on the in-memory ledger."""
from __future__ import annotations

import base64
import logging
import threading
import time

import pytest

from fedfabric.client import Rejected
from fedfabric.node.bootstrap import create_job, job_spec
from fedfabric.node.jobfile import parse_job
from fedfabric.node.runtime import NodeError, NodeOptions, OrgNode

from tests.chaincode.harness import ORGS, Ledger, init

from .memledger import MemClient
from .test_nodes_memledger import MSP_OF, _job


class FlakyClient(MemClient):
    """Refuses the first ``times`` calls of ``fn`` with ``status`` (a peer saying 'not now')."""

    def __init__(self, *a, fn: str, status: int | None = 503, times: int = 1, **kw) -> None:
        super().__init__(*a, **kw)
        self.flaky_fn, self.flaky_status, self.left = fn, status, times
        self.refused: list[tuple] = []

    def _call(self, fn, args, transient):
        if fn == self.flaky_fn and self.left > 0:
            self.left -= 1
            self.refused.append((fn, args, dict(transient or {})))
            raise Rejected(fn, "the private payload of Org2MSP is not available on this peer", self.flaky_status,
                           "flaky peer")
        return super()._call(fn, args, transient)


class CorruptAggregateClient(MemClient):
    """Serves an aggregate whose bytes no longer hash to the ledger's value (``times`` times)."""

    def __init__(self, *a, times: int = 1, **kw) -> None:
        super().__init__(*a, **kw)
        self.left = times

    def _call(self, fn, args, transient):
        out = super()._call(fn, args, transient)
        if fn == "get_aggregate" and self.left > 0:
            self.left -= 1
            data = bytearray(base64.b64decode(out["data_b64"]))
            data[0] ^= 0xFF
            out = {**out, "data_b64": base64.b64encode(bytes(data)).decode()}
        return out


def _world(tmp_path, doc, clients=None):
    """Ledger with the job of ``doc``; one node per org, org i using ``clients[i]`` if given."""
    led = Ledger()
    init(led)
    lock = threading.Lock()
    admin = MemClient(led, ORGS[0], "admin", lock)
    create_job(admin, parse_job(doc), MSP_OF)
    clients = clients or {}
    nodes = []
    for m in ORGS:
        make = clients.get(m, lambda led, m, lock: MemClient(led, m, lock=lock))
        nodes.append(OrgNode(make(led, m, lock), m, doc["job_id"], tmp_path / m,
                             NodeOptions(grace=0.0, tick=0.01, job_wait=0.0)))
    return led, admin, nodes


def _drive_safely(nodes, seconds=20.0, pause=0.0):
    """Step every node through ``safe_step`` (what run() does each tick) until all are done."""
    active, end = list(nodes), time.monotonic() + seconds
    while active and time.monotonic() < end:
        active = [n for n in active if n.safe_step()]
        if pause:
            time.sleep(pause)
    assert not active, "nodes did not finish the job"


def test_a_503_on_submit_is_retried_on_the_next_tick_with_the_same_bytes(tmp_path, caplog):
    flaky = {ORGS[1]: lambda led, m, lock: FlakyClient(led, m, lock=lock, fn="submit_update")}
    led, admin, nodes = _world(tmp_path, _job("j-503", rounds=1), flaky)
    with caplog.at_level(logging.WARNING, logger="fedfabric.node"):
        _drive_safely(nodes)
    client = nodes[1].client
    assert client.left == 0 and len(client.refused) == 1          # it was refused once …
    v1 = admin.get_version("j-503", 1)
    assert [c["msp_id"] for c in v1["contributors"]] == ORGS       # … and still contributed
    resent = {c["msp_id"]: c["update_hash"] for c in v1["contributors"]}[ORGS[1]]
    import hashlib
    assert hashlib.sha256(client.refused[0][2]["update"]).hexdigest() == resent   # the very same payload
    text = caplog.text
    assert "submit_update refused for now" in text and "503" in text and "retrying on the next tick" in text


@pytest.mark.parametrize("fn,status", [("get_aggregate", 503), ("aggregate", None), ("vote", 503)])
def test_transient_refusals_of_reads_and_writes_do_not_stop_the_node(tmp_path, caplog, fn, status):
    flaky = {m: (lambda led, m, lock: FlakyClient(led, m, lock=lock, fn=fn, status=status, times=2)) for m in ORGS}
    led, admin, nodes = _world(tmp_path, _job(f"j-{fn}", rounds=1), flaky)
    with caplog.at_level(logging.WARNING, logger="fedfabric.node"):
        _drive_safely(nodes)
    assert admin.get_job(f"j-{fn}")["rounds_finalized"] == 1
    assert any(n.client.refused for n in nodes)
    assert "retrying on the next tick" in caplog.text


def test_a_corrupt_aggregate_gets_a_no_vote_and_the_node_carries_on(tmp_path, caplog):
    corrupt = {ORGS[2]: lambda led, m, lock: CorruptAggregateClient(led, m, lock=lock, times=1)}
    led, admin, nodes = _world(tmp_path, _job("j-corrupt", rounds=2), corrupt)
    with caplog.at_level(logging.WARNING, logger="fedfabric.node"):
        _drive_safely(nodes)
    v1 = admin.get_version("j-corrupt", 1)
    votes = {a["msp_id"]: a for a in v1["approvals"]}
    assert votes[ORGS[2]]["approve"] is False and votes[ORGS[2]]["model_hash"] is None
    assert votes[ORGS[0]]["approve"] and votes[ORGS[1]]["approve"]          # 2/3 of stake: finalized anyway
    # the node went on: it stored version 1 from a good copy and took part in round 2
    assert nodes[2].store.has(v1["model_hash"])
    v2 = admin.get_version("j-corrupt", 2)
    assert [c["msp_id"] for c in v2["contributors"]] == ORGS
    assert all(a["approve"] for a in v2["approvals"])
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("corrupt" in r.getMessage() and "voting NO" in r.getMessage() for r in errors)


def test_an_aggregate_that_never_checks_out_is_logged_once_and_never_crashes(tmp_path, caplog):
    corrupt = {ORGS[2]: lambda led, m, lock: CorruptAggregateClient(led, m, lock=lock, times=10**6)}
    led, admin, nodes = _world(tmp_path, _job("j-bad", rounds=1), corrupt)
    with caplog.at_level(logging.WARNING, logger="fedfabric.node"):
        for _ in range(300):
            for n in nodes[:2]:
                n.safe_step()
            assert nodes[2].safe_step() is True                       # never raises, never gives up
            if admin.get_job("j-bad")["status"] != "active":
                break
        for _ in range(20):
            assert nodes[2].safe_step() is True
    assert admin.get_job("j-bad")["rounds_finalized"] == 1
    v1 = admin.get_version("j-bad", 1)
    assert not nodes[2].store.has(v1["model_hash"])                  # unverified bytes are never stored
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and "not used" in r.getMessage()]
    assert len(loud) == 1                                             # loud, but not once per tick


def test_a_final_refusal_is_logged_as_an_error_and_the_round_recovers(tmp_path, caplog):
    bad = {ORGS[2]: lambda led, m, lock: FlakyClient(led, m, lock=lock, fn="submit_update", status=400)}
    doc = _job("j-400", rounds=1, windows={"registration_s": 30, "submission_s": 2, "approval_s": 30})
    led, admin, nodes = _world(tmp_path, doc, bad)
    with caplog.at_level(logging.WARNING, logger="fedfabric.node"):
        _drive_safely(nodes, seconds=15, pause=0.02)
    rnd = admin.get_round("j-400", 1)
    assert rnd["state"] == "finalized" and rnd["dropped"] == [ORGS[2]]   # seeds revealed for it
    assert any(r.levelno == logging.ERROR and "submit_update refused by the contract" in r.getMessage()
               for r in caplog.records)


def test_unknown_job_is_waited_for_then_a_clear_error(tmp_path):
    led = Ledger()
    init(led)
    node = OrgNode(MemClient(led, ORGS[0]), ORGS[0], "no-such-job", tmp_path, NodeOptions(job_wait=0.3))
    assert node.safe_step() is True            # this peer may lag behind the one that created it: wait
    time.sleep(0.35)
    with pytest.raises(NodeError, match="job 'no-such-job' does not exist on the ledger"):
        node.safe_step()


def test_a_non_participant_stops_at_once_and_the_participants_run_the_job(tmp_path):
    led, admin, nodes = _world(tmp_path, _job("j-two", rounds=1, participants=["org1", "org2"]))
    job = admin.get_job("j-two")
    assert job["spec"]["participants"] == ["Org1MSP", "Org2MSP"]
    with pytest.raises(NodeError, match="Org3MSP is not a participant of job j-two"):
        nodes[2].safe_step()
    _drive_safely(nodes[:2])
    v1 = admin.get_version("j-two", 1)
    assert [c["msp_id"] for c in v1["contributors"]] == ["Org1MSP", "Org2MSP"]
    assert "register" not in nodes[2].client.calls
    # the two did not wait for the third org's registration window (30 s): everyone expected had registered
    r1 = admin.get_round("j-two", 1)
    assert r1["times"]["collecting"] - r1["times"]["registration"] < 5


def test_a_recipe_this_node_cannot_follow_is_a_clear_error(tmp_path):
    led = Ledger()
    init(led)
    admin = MemClient(led, ORGS[0], "admin")
    spec = job_spec(parse_job(_job("j-mismatch")), MSP_OF)
    spec["model"] = {**spec["model"], "initial_hash": "0" * 64}     # not what this recipe builds
    admin.create_job(spec)
    node = OrgNode(MemClient(led, ORGS[0]), ORGS[0], "j-mismatch", tmp_path, NodeOptions(job_wait=0.0))
    with pytest.raises(NodeError, match="initial model built here differs"):
        node.safe_step()


def test_an_update_that_cannot_be_encoded_sits_the_round_out_without_crashing(tmp_path, caplog):
    from fedfabric.fl.fixedpoint import FixedPointError

    doc = _job("j-nan", rounds=1, windows={"registration_s": 30, "submission_s": 2, "approval_s": 30})
    led, admin, nodes = _world(tmp_path, doc)

    def diverged(*a, **kw):
        raise FixedPointError("non-finite value in update")

    nodes[2]._prepare_update = diverged
    with caplog.at_level(logging.WARNING, logger="fedfabric.node"):
        _drive_safely(nodes, seconds=15, pause=0.02)
    assert admin.get_round("j-nan", 1)["dropped"] == [ORGS[2]]
    assert "update cannot be encoded (non-finite value in update)" in caplog.text
