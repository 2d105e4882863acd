"""What a running node survives (transient refusals, corrupt bytes, a final refusal) and what stops it with
a clear error (unknown job, not a participant, a recipe it cannot follow) -- on the in-memory ledger."""
from __future__ import annotations

import hashlib
import logging

import pytest

from fedfabric.client import Rejected
from fedfabric.node.bootstrap import create_job, job_spec
from fedfabric.node.jobfile import parse_job
from fedfabric.node.runtime import NodeError, NodeOptions, OrgNode

from tests.chaincode.harness import ORGS, init

from .memledger import MemClient, drive, wall_clock_ledger
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
            raise Rejected(fn, "the update of Org2MSP in round 1 is not available on this peer (yet)",
                           self.flaky_status, "flaky peer")
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
            out = bytes([out[0] ^ 0xFF]) + out[1:]
        return out


def _world(tmp_path, doc, clients=None):
    """Ledger with the job of ``doc``; one node per org, org i using ``clients[i]`` if given."""
    led = wall_clock_ledger()
    init(led)
    admin = MemClient(led, ORGS[0], "admin")
    create_job(admin, parse_job(doc), MSP_OF)
    clients = clients or {}
    nodes = []
    for m in ORGS:
        make = clients.get(m, lambda led, m: MemClient(led, m))
        nodes.append(OrgNode(make(led, m), m, doc["job_id"], tmp_path / m, NodeOptions(grace=0.0, tick=0.01,
                                                                                     job_wait=0.0)))
    return led, admin, nodes


def test_a_503_on_submit_is_retried_on_the_next_tick_with_the_same_bytes(tmp_path, caplog):
    flaky = {ORGS[1]: lambda led, m: FlakyClient(led, m, fn="submit_update")}
    led, admin, nodes = _world(tmp_path, _job("j-503", rounds=1), flaky)
    with caplog.at_level(logging.WARNING, logger="fedfabric.node"):
        drive(led, nodes)
    client = nodes[1].client
    assert client.left == 0 and len(client.refused) == 1          # it was refused once …
    v1 = admin.get_version("j-503", 1)
    assert [c["msp_id"] for c in v1["contributors"]] == ORGS       # … and still contributed
    resent = {c["msp_id"]: c["update_hash"] for c in v1["contributors"]}[ORGS[1]]
    assert hashlib.sha256(client.refused[0][2]["update"]).hexdigest() == resent   # the very same payload
    text = caplog.text
    assert "submit_update refused for now" in text and "503" in text and "retrying on the next tick" in text


@pytest.mark.parametrize("fn,status", [("get_update", 503), ("vote", None), ("vote", 503), ("finalize_round", 503)])
def test_transient_refusals_of_reads_and_writes_do_not_stop_the_node(tmp_path, caplog, fn, status):
    flaky = {m: (lambda led, m: FlakyClient(led, m, fn=fn, status=status, times=2)) for m in ORGS}
    led, admin, nodes = _world(tmp_path, _job(f"j-{fn}", rounds=1), flaky)
    with caplog.at_level(logging.WARNING, logger="fedfabric.node"):
        drive(led, nodes)
    assert admin.get_job(f"j-{fn}")["rounds_finalized"] == 1
    assert any(n.client.refused for n in nodes)
    assert "retrying on the next tick" in caplog.text


def test_a_restarted_node_never_uses_a_corrupt_aggregate_and_rebuilds_from_a_good_copy(tmp_path, caplog):
    led, admin, nodes = _world(tmp_path, _job("j-corrupt", rounds=2))
    drive(led, nodes)
    v1, v2 = (admin.get_version("j-corrupt", v) for v in (1, 2))
    for h in (v1["model_hash"], v2["model_hash"]):           # org3's node lost its models
        nodes[2].store.path(h).unlink()
    reborn = OrgNode(CorruptAggregateClient(led, ORGS[2], times=1), ORGS[2], "j-corrupt", tmp_path / ORGS[2],
                     NodeOptions(grace=0.0, tick=0.01))
    with caplog.at_level(logging.WARNING, logger="fedfabric.node"):
        drive(led, [reborn])                                 # the job is complete: it only catches up
    assert reborn.store.has(v2["model_hash"]) and reborn.store.has(v1["model_hash"])
    assert reborn.client.left == 0                           # it was served a corrupt aggregate once …
    assert any("aggregate served by this peer is corrupt" in r.getMessage() and r.levelno >= logging.ERROR
               for r in caplog.records)                      # … refused it, and rebuilt from a good copy


def test_a_final_refusal_is_logged_as_an_error_and_the_round_recovers(tmp_path, caplog):
    bad = {ORGS[2]: lambda led, m: FlakyClient(led, m, fn="submit_update", status=400)}
    doc = _job("j-400", rounds=1, windows={"registration_s": 30, "submission_s": 1, "reveal_s": 20,
                                           "approval_s": 20})
    led, admin, nodes = _world(tmp_path, doc, bad)
    with caplog.at_level(logging.WARNING, logger="fedfabric.node"):
        drive(led, nodes, pause=0.02)
    rnd = admin.get_round("j-400", 1)
    assert rnd.state.value == "finalized" and rnd.outcome["left_out"] == [ORGS[2]]   # seeds revealed for it
    assert any(r.levelno == logging.ERROR and "submit_update refused by the contract" in r.getMessage()
               for r in caplog.records)


def test_unknown_job_is_waited_for_then_a_clear_error(tmp_path):
    led = wall_clock_ledger()
    init(led)
    node = OrgNode(MemClient(led, ORGS[0]), ORGS[0], "no-such-job", tmp_path, NodeOptions(job_wait=0.3))
    with pytest.raises(NodeError, match="job 'no-such-job' does not exist on the ledger"):
        node.sync()        # this peer may lag behind the one that created it: it waited job_wait first


def test_a_non_participant_stops_at_once_and_the_participants_run_the_job(tmp_path):
    led, admin, nodes = _world(tmp_path, _job("j-two", rounds=1, participants=["org1", "org2"]))
    assert admin.get_job("j-two")["spec"]["participants"] == ["Org1MSP", "Org2MSP"]
    with pytest.raises(NodeError, match="Org3MSP is not a participant of job j-two"):
        nodes[2].sync()
    drive(led, nodes[:2])
    v1 = admin.get_version("j-two", 1)
    assert [c["msp_id"] for c in v1["contributors"]] == ["Org1MSP", "Org2MSP"]
    assert "register" not in nodes[2].client.calls
    # the two did not wait for a third org's registration window (30 s): the electorate had registered
    r1 = admin.get_round("j-two", 1)
    assert r1.started_at - r1.opened_at < 5


def test_a_recipe_this_node_cannot_follow_is_a_clear_error(tmp_path):
    led = wall_clock_ledger()
    init(led)
    admin = MemClient(led, ORGS[0], "admin")
    spec = job_spec(parse_job(_job("j-mismatch")), MSP_OF)
    spec["model"] = {**spec["model"], "initial_hash": "0" * 64}     # not what this recipe builds
    admin.create_job(spec)
    node = OrgNode(MemClient(led, ORGS[0]), ORGS[0], "j-mismatch", tmp_path, NodeOptions(job_wait=0.0))
    with pytest.raises(NodeError, match="initial model built here differs"):
        node.sync()


def test_an_update_that_cannot_be_encoded_sits_the_round_out_without_crashing(tmp_path, caplog):
    from fedfabric.fl.fixedpoint import FixedPointError

    doc = _job("j-nan", rounds=1, windows={"registration_s": 30, "submission_s": 1, "reveal_s": 20,
                                           "approval_s": 20})
    led, admin, nodes = _world(tmp_path, doc)

    def diverged(*a, **kw):
        raise FixedPointError("non-finite value in update")

    nodes[2].sync()
    nodes[2].recipe.encode = diverged
    with caplog.at_level(logging.WARNING, logger="fedfabric.node"):
        drive(led, nodes, pause=0.02)
    assert admin.get_round("j-nan", 1).outcome["left_out"] == [ORGS[2]]
    assert "update cannot be encoded (non-finite value in update)" in caplog.text
